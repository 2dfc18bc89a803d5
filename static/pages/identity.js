/* A face chosen is sent at once. "Train identity model": start training with the teacher's secret, then
   poll its status until it ends. Without the button (training from the site is off) a run under way still
   shows its progress. */
"use strict";

(() => {
  const upload = document.getElementById("identity-file");
  upload.addEventListener("change", () => upload.form.submit());
  const section = document.getElementById("training");
  const button = document.getElementById("train");
  const token = document.getElementById("train-token");
  const bar = document.getElementById("train-progress");
  const message = document.getElementById("train-message");

  function show(status) {
    bar.value = status.progress;
    message.textContent = status.state === "failed" ? `Training failed: ${status.message}` : status.message;
    if (button) button.disabled = status.state === "running";
  }

  async function poll() {
    const status = await (await fetch(section.dataset.status)).json();
    show(status);
    if (status.state === "running") setTimeout(poll, 1000);
    else if (status.state === "finished") message.textContent = "Finished: the new identity model is in use. Reload to see it.";
  }

  if (button) button.addEventListener("click", async () => {
    const response = await fetch(section.dataset.status, { method: "POST", headers: { "X-Training-Token": token.value } });
    const answer = await response.json();
    if (!response.ok) { message.textContent = answer.error; return; }
    show(answer);
    poll();
  });

  if (section.dataset.state === "running") poll();
})();
