/* Explore the CNN: the student's read-out (Calibrate to me, on the Live page) beside the model's own last layer.
   The model's weights come with its exported card (engine/models/NAME.json, browser.head); the read-out from this
   browser's storage, where Live keeps it when the student asks, or from a file opened here. Everything is drawn
   on this device: the read-out is never sent. The section says what it shows in data-readout ("none", "kept",
   "file"). */
"use strict";
(() => {
  const section = document.getElementById("readout-view");
  const state = document.getElementById("readout-view-state");
  const fileInput = document.getElementById("readout-file");
  const PIXEL = { width: 2, height: 14 };   /* one weight's cell in the pictures */
  let card = null, modules = null;

  async function load() {
    if (!card) {
      const engineUrl = new URL(document.body.dataset.engine, location.href);
      card = await EMO.answer(await fetch(new URL(`models/${EMO.model()}.json`, engineUrl)));
      modules = await import(new URL("engine/readout.js", new URL(document.body.dataset.static, location.href)).href);
    }
    return card;
  }

  /* A weight as a colour: blue (negative) through white (0) to red (positive), ``scale`` the largest size. */
  function colour(value, scale) {
    const share = Math.max(-1, Math.min(1, value / scale));
    const fade = Math.round(255 * (1 - Math.abs(share)));
    return share >= 0 ? [255, fade, fade] : [fade, fade, 255];
  }

  /* Weights (features x classes) as a picture: a row per class, a column per feature. */
  function draw(canvas, weights, scale) {
    const features = weights.length, classes = weights[0].length;
    canvas.width = features * PIXEL.width;
    canvas.height = classes * PIXEL.height;
    const context = canvas.getContext("2d");
    const picture = context.createImageData(canvas.width, canvas.height);
    for (let f = 0; f < features; f++) {
      for (let c = 0; c < classes; c++) {
        const [r, g, b] = colour(weights[f][c], scale);
        for (let y = c * PIXEL.height; y < (c + 1) * PIXEL.height; y++) {
          for (let x = f * PIXEL.width; x < (f + 1) * PIXEL.width; x++) picture.data.set([r, g, b, 255], (y * canvas.width + x) * 4);
        }
      }
    }
    context.putImageData(picture, 0, 0);
  }

  function show(readout, source) {
    const { weights, bias } = card.browser.head;
    const change = weights.map((row, f) => row.map((value, c) => readout.weights[f][c] - value));
    const scale = Math.max(...weights.flat().map(Math.abs), ...readout.weights.flat().map(Math.abs));
    draw(document.getElementById("weights-shipped"), weights, scale);
    draw(document.getElementById("weights-yours"), readout.weights, scale);
    draw(document.getElementById("weights-change"), change, scale);
    document.getElementById("weights-scale").textContent = `full red ${EMO.round(scale)}, full blue ${EMO.round(-scale)}`;
    const rows = card.classes.map((name, c) => {
      const moved = change.map((row) => row[c]);
      const distance = Math.sqrt(moved.reduce((sum, v) => sum + v * v, 0));
      const most = moved.map((v, f) => [Math.abs(v), f]).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, f]) => `#${f}`);
      const line = document.createElement("tr");
      for (const text of [name, EMO.round(bias[c]), EMO.round(readout.bias[c]), EMO.round(distance), most.join(", ")]) {
        line.append(Object.assign(document.createElement("td"), { textContent: text }));
      }
      return line;
    });
    document.getElementById("weights-table").replaceChildren(...rows);
    const frames = Object.entries(readout.frames).map(([name, count]) => `${count} of ${name}`).join(", ");
    state.textContent = `${source === "kept" ? "Your read-out kept in this browser" : "The read-out in this file"}, fitted on ` +
      `${frames || "frames"}. Only these ${weights.length} × ${card.classes.length} weights and ${card.classes.length} ` +
      "biases differ from the model's; the features they read are the same for both.";
    state.classList.remove("error");
    section.dataset.readout = source;
    document.getElementById("readout-weights").hidden = false;
  }

  function fail(message) {
    state.textContent = message;
    state.classList.add("error");
  }

  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    try {
      await load();
      show(modules.Readout.fromJSON(JSON.parse(await file.text()), card), "file");
    } catch (err) {
      fail(`This read-out cannot be shown: ${err instanceof SyntaxError ? "the file is not JSON" : err.message}`);
    }
  });

  load().then(() => {
    const kept = localStorage.getItem(modules.storageKey(card));
    if (kept) show(modules.Readout.fromJSON(JSON.parse(kept), card), "kept");
  }).catch((err) => fail(`The model's last layer cannot be shown: ${err.message}`));
})();
