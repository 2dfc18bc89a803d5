/* Calibrate to me, on the Live page: the guided sequence (static/engine/calibration.js) fed by the frames the
   page analyses on this device (live.js's "analysed" event), then the before-and-after tables of the held-back
   frames, and Live reading with the person's own last layer until they go back to the model as shipped. The
   read-out never leaves the device: it lives in this page, in this browser's storage when the student ticks
   "Keep", and in a file only when they export it. The section says its state in data-state ("shipped",
   "running", "calibrated") and the fit's time in data-fit-ms, for tests and tools. */
"use strict";
(() => {
  const [section, result, choices, calibrateButton, shippedButton, keep, exportButton, importInput, prompt,
         progress, state] = ["calibration", "live-result", "calibration-choices", "calibrate", "as-shipped",
                             "keep-readout", "export-readout", "import-readout", "prompt", "calibration-progress",
                             "readout-state"].map((id) => document.getElementById(id));
  const facts = EMO.fact("calibration");
  let engine = null, modules = null;
  let sequence = null;   /* the calibration under way */
  let mine = null;       /* the student's read-out (in use or not) */

  function say(message, isError = false) {
    state.textContent = message;
    state.classList.toggle("error", isError);
  }

  function storageKey() { return modules.storageKey(engine.predictor.card); }

  /* The engine and the read-out's modules, loaded once; the expressions offered are the model's own classes. */
  async function ready() {
    if (!engine) {
      const url = (name) => new URL(`engine/${name}`, new URL(document.body.dataset.static, location.href)).href;
      const [loaded, readout, calibration] = await Promise.all([EMO.engine(), import(url("readout.js")), import(url("calibration.js"))]);
      [engine, modules] = [loaded, { ...readout, ...calibration }];
    }
    return engine;
  }

  function offerExpressions(classes) {
    const boxes = classes.filter((name) => name !== facts.neutral).map((name) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = name;
      box.checked = facts.suggested.includes(name);
      label.append(box, ` ${name}`);
      return label;
    });
    choices.append(...boxes);
  }

  /* Read faces with ``readout`` (null: the model as shipped), and say which on the page. */
  function use(readout) {
    engine.predictor.readout = readout;
    section.dataset.state = readout ? "calibrated" : "shipped";
    shippedButton.hidden = !mine;
    shippedButton.textContent = readout ? "Back to the model as shipped" : "Use my read-out again";
    exportButton.hidden = !mine;
    const frames = mine ? Object.values(mine.frames).reduce((a, b) => a + b, 0) : 0;
    say(readout ? `Live reads your face with your own last layer (fitted on ${frames} frames of ` +
                  `${Object.keys(readout.frames).join(", ")}): softmax of your weights, so the model's temperature no ` +
                  "longer applies. It stays on this device."
                : "Faces are read by the model as shipped.");
  }

  /* Keep the read-out in the browser's storage when asked; a full or blocked storage says so and loses nothing else. */
  function remember() {
    try {
      if (keep.checked && mine) localStorage.setItem(storageKey(), JSON.stringify(mine));
      if (!keep.checked) localStorage.removeItem(storageKey());
    } catch (err) {
      say(`Your read-out is in use but could not be kept in this browser (${err.message}): export it to keep it.`, true);
    }
  }

  async function start() {
    try {
      await ready();
    } catch (err) {
      return say(`Calibration needs this device's engine, which could not load: ${err.message}`, true);
    }
    if (result.dataset.engine !== "browser" || !Number(result.dataset.frames)) {
      return say("Start the camera first, with the work done on this device: calibration reads your face there.", true);
    }
    let expressions;
    try {
      expressions = modules.expressionsToShow(engine.predictor.classes,
        Array.from(choices.querySelectorAll("input:checked"), (box) => box.value), facts.neutral);
    } catch (err) {
      return say(err.message, true);
    }
    sequence = new modules.CalibrationSequence(engine.predictor.classes, expressions, facts);
    section.dataset.state = "running";
    document.getElementById("calibration-result").hidden = true;
    calibrateButton.disabled = true;
    prompt.hidden = progress.hidden = false;
    say(`Calibrating: ${expressions.join(", ")}, about ${Math.round(sequence.totalSeconds)} seconds.`);
  }

  /* One analysed frame: the sequence takes its first face's features; the last one fits the read-out. */
  function frame(event) {
    if (!sequence) return;
    if (!event.detail.chosen) {
      stopSequence();
      return say("Calibration works on this device only: choose “Work done on this device”.", true);
    }
    const { chosen, seen } = event.detail;
    const now = chosen.length && seen[0] ? chosen[0].features : null;   /* a face only kept from before does not count */
    const step = sequence.add(performance.now() / 1000, now);
    progress.value = step.progress;
    prompt.textContent = step.phase === "done" ? "" : modules.promptText(step);
    if (step.phase !== "done") return;
    const finished = sequence;
    stopSequence();
    try {
      const done = finished.finish(engine.predictor, engine.constants.readout);
      mine = done.readout;
      section.dataset.fitMs = done.fit.milliseconds.toFixed(1);
      showTables(finished, done);
      remember();
      use(mine);
    } catch (err) {
      section.dataset.state = engine.predictor.readout ? "calibrated" : "shipped";
      say(err.message, true);
    }
  }

  function stopSequence() {
    sequence = null;
    calibrateButton.disabled = false;
    prompt.hidden = progress.hidden = true;
  }

  /* The held-back frames, read before and after: one table each, rows the expressions shown, columns every class. */
  function showTables(finished, done) {
    const classes = finished.classes;
    for (const [id, counts] of [["before-table", done.before], ["after-table", done.after]]) {
      const table = document.getElementById(id);
      const head = document.createElement("tr");
      head.append(...["shown \\ read", ...classes].map((text) => Object.assign(document.createElement("th"), { textContent: text })));
      const rows = finished.expressions.map((name, row) => {
        const line = document.createElement("tr");
        line.append(Object.assign(document.createElement("th"), { textContent: name, scope: "row" }));
        counts[row].forEach((count, column) => {
          const cell = Object.assign(document.createElement("td"), { textContent: String(count) });
          if (classes[column] === name) cell.className = "right";
          line.append(cell);
        });
        return line;
      });
      table.replaceChildren(head, ...rows);
      const total = counts.flat().reduce((a, b) => a + b, 0);
      const right = finished.expressions.reduce((sum, name, row) => sum + counts[row][classes.indexOf(name)], 0);
      table.closest("figure").querySelector(".accuracy").textContent = total ? `${right} of ${total} frames right` : "no frames held back";
    }
    const fitted = Object.values(done.fitted).reduce((a, b) => a + b, 0);
    document.getElementById("calibration-facts").textContent = `The tables read the last ${facts.held_back} s of each ` +
      `expression, which the fit did not see. Fitted on ${fitted} frames in ${Math.round(done.fit.milliseconds)} ms ` +
      `(${done.fit.iterations} steps), on this device.`;
    document.getElementById("calibration-result").hidden = false;
  }

  function download() {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([JSON.stringify(mine)], { type: "application/json" }));
    link.download = `readout-${mine.model}.json`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  async function importFile(file) {
    try {
      await ready();
      mine = modules.Readout.fromJSON(JSON.parse(await file.text()), engine.predictor.card);
    } catch (err) {
      return say(`This read-out cannot be used: ${err instanceof SyntaxError ? "the file is not JSON" : err.message}`, true);
    }
    remember();
    use(mine);
  }

  calibrateButton.addEventListener("click", start);
  document.getElementById("stop").addEventListener("click", () => {
    if (!sequence) return;
    stopSequence();
    section.dataset.state = engine.predictor.readout ? "calibrated" : "shipped";
    say("The calibration stopped with the camera; nothing was fitted.");
  });
  result.addEventListener("analysed", frame);
  shippedButton.addEventListener("click", () => use(engine.predictor.readout ? null : mine));
  keep.addEventListener("change", remember);
  exportButton.addEventListener("click", download);
  importInput.addEventListener("change", () => { if (importInput.files[0]) importFile(importInput.files[0]); importInput.value = ""; });

  /* The expressions to offer, and a read-out this browser kept from before, once the engine is there: the
     engine Live loads too (once per page), not loaded for this alone when the student chose the server. */
  function restore() {
    offerExpressions(engine.predictor.classes);
    const kept = localStorage.getItem(storageKey());
    if (!kept) return;
    try {
      mine = modules.Readout.fromJSON(JSON.parse(kept), engine.predictor.card);
    } catch (err) {
      localStorage.removeItem(storageKey());
      return;
    }
    keep.checked = true;
    use(mine);
  }

  if (EMO.engineChoice() !== "server") {
    ready().then(restore).catch((err) => {
      calibrateButton.disabled = true;
      say(`Calibration needs this device's engine, which could not load: ${err.message}`);
    });
  }
})();
