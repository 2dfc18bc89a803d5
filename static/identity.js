/* "Train identity model": start training, then poll its status until it ends. */
"use strict";

(() => {
  const section = document.getElementById("training");
  const button = document.getElementById("train");
  const bar = document.getElementById("train-progress");
  const message = document.getElementById("train-message");

  function show(status) {
    bar.value = status.progress;
    message.textContent = status.state === "failed" ? `Training failed: ${status.message}` : status.message;
    button.disabled = status.state === "running";
  }

  async function poll() {
    const status = await (await fetch(section.dataset.status)).json();
    show(status);
    if (status.state === "running") setTimeout(poll, 1000);
    else if (status.state === "finished") message.textContent = "Finished: the new identity model is in use. Reload to see it.";
  }

  button.addEventListener("click", async () => {
    const response = await fetch(section.dataset.status, { method: "POST" });
    const answer = await response.json();
    if (!response.ok) { message.textContent = answer.error; return; }
    show(answer);
    poll();
  });

  if (button.disabled) poll();
})();
