/* Explore the CNN: one face through every layer, the first kernels, Grad-CAM for any class, regions.
   Every feature map and vector can be pointed into: the face views box what the place sees, and a
   click (or Enter) opens the operation that made its number (laid out by operation.js). */
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  const status = document.getElementById("status");
  const faceSelect = document.getElementById("face");
  const camClass = document.getElementById("cam-class");
  const camLayer = document.getElementById("cam-layer");
  const zoom = document.getElementById("zoom");
  const pointing = document.getElementById("pointing");
  const POINTING_HINT = pointing.textContent;
  const pointerView = document.getElementById("pointer-view");  /* the face in a corner while pointing far below it */
  const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  let photo = null;    /* the Blob being explored */
  let search = {};     /* how the server looks for its faces: a Gallery face is one already, read whole as the Gallery reads it */
  let classes = [];
  let explored = 0;    /* counts explanation requests, so a late answer never replaces a newer one */
  let camAsked = 0;    /* counts Grad-CAM refreshes, the same way */
  let opened = 0;      /* the same for operation requests */

  function fail(err) {
    status.textContent = `Could not explore this image: ${err.message}`;
    status.classList.add("error");
  }

  async function start() {
    const source = document.getElementById("source");
    if (params.has("gallery")) {
      const index = Number(params.get("gallery"));
      search = { detail: "whole" };
      const image = await fetch(`/gallery/image/${index}`);
      if (!image.ok) await EMO.answer(image);   /* rejects with the server's one line */
      photo = await image.blob();
      source.textContent = "Exploring a test face from the Gallery.";
      /* What people said is a panel beside the network's bars: without it, Explore goes on. */
      showCrowd(await EMO.answer(await fetch(`/gallery/votes/${index}`)).catch(() => null));
    } else {
      photo = await EMO.rememberedPhoto();
      source.textContent = photo ? "Exploring your last photo from the Analyse page." :
        "Choose a photo to explore (or analyse one first on the Analyse page).";
    }
    /* The Analyse page names the face by its box (its faces may come in another order than the server's). */
    if (photo) await explore(params.has("box") ? { box: params.get("box") } : { face: Number(params.get("face") || 0) });
  }

  /* What the people who labelled a Gallery face said (FER+: ten votes), beside the network's bars. */
  function showCrowd(said) {
    if (!said || !said.votes) return;
    document.getElementById("crowd").hidden = false;
    document.getElementById("crowd-count").textContent = Object.values(said.votes).reduce((a, b) => a + b, 0);
    /* most votes first, not the card's order: uncoloured, as the Gallery draws them */
    EMO.bars(document.getElementById("crowd-bars"), said.shares, said.label, { coloured: false });
    const fer2013 = document.getElementById("crowd-fer2013");
    fer2013.hidden = !said.fer2013;
    fer2013.textContent = said.fer2013 ? `FER2013's one label: ${said.fer2013}` : "";
  }

  document.getElementById("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    photo = file;
    EMO.rememberPhoto(file);
    document.getElementById("crowd").hidden = true;
    search = {};
    document.getElementById("source").textContent = `Exploring ${file.name}.`;
    explore({ face: 0 });
  });
  faceSelect.addEventListener("change", () => explore({ face: Number(faceSelect.value) }));
  camClass.addEventListener("change", updateGradcam);
  camLayer.addEventListener("change", updateGradcam);

  /* ``which``: the face by its number, ``{face}``, or by its box, ``{box: "x,y,w,h"}``. */
  async function explore(which) {
    const request = ++explored;
    status.textContent = "Running the face through the network…";
    status.classList.remove("error");
    try {
      const answer = await EMO.post("/api/explain", photo, { ...which, ...search });
      if (request !== explored) return;   /* another photo or face was asked for meanwhile */
      status.textContent = "";
      render(answer);
    } catch (err) { if (request === explored) fail(err); }
  }

  function render(answer) {
    camAsked++;   /* a Grad-CAM refresh asked for before this answer came is for the choices it replaces */
    document.getElementById("explorer").hidden = false;
    document.getElementById("face-choice").hidden = answer.faces < 2;
    fillSelect(faceSelect, [...Array(answer.faces).keys()].map((i) => [i, `face ${i + 1}`]), answer.face_index);
    const face = answer.face;
    document.getElementById("input-image").src = answer.input.image;
    document.getElementById("prediction").textContent = `${face.label} (${EMO.percent(face.confidence)})`;
    document.getElementById("whole").hidden = !face.whole_image;
    document.getElementById("alignment-text").textContent = answer.alignment.text;
    document.getElementById("alignment-photo").src = answer.alignment.photo;
    document.getElementById("alignment-crop").src = answer.alignment.crop;
    EMO.bars(document.getElementById("summary-bars"), face.probabilities, face.label);
    zoom.querySelector("#zoom-face img").src = answer.input.image;
    pointerView.querySelector("img").src = answer.input.image;
    classes = answer.classes;
    renderSteps([answer.input, ...answer.layers], face);
    renderKernels(answer.kernels);
    fillSelect(camClass, answer.classes.map((name) => [name, name]), answer.gradcam.class);
    fillSelect(camLayer, answer.gradcam.layers.map((name) => [name, name]), answer.gradcam.layer);
    renderGradcam(answer);
  }

  function fillSelect(select, options, chosen) {
    select.replaceChildren(...options.map(([value, text]) => new Option(text, value, false, String(value) === String(chosen))));
  }

  const shape = (dims) => dims.join(" × ");

  /* The overview strip and one card per step, input first, softmax last. */
  function renderSteps(steps, face) {
    const overview = document.getElementById("overview");
    const list = document.getElementById("steps");
    overview.replaceChildren();
    list.replaceChildren();
    steps.forEach((step, index) => {
      const chip = document.createElement("li");
      chip.className = `chip kind-${step.kind}`;
      chip.innerHTML = `<a href="#step-${index}"><strong></strong><span></span></a>`;
      chip.querySelector("strong").textContent = step.kind;
      chip.querySelector("span").textContent = shape(step.shape);
      overview.appendChild(chip);

      const item = document.createElement("li");
      item.className = `card step kind-${step.kind}`;
      item.id = `step-${index}`;
      item.innerHTML = `<h3><span class="kind"></span> <code class="name"></code> <span class="shape"></span></h3><p class="text"></p>`;
      item.querySelector(".kind").textContent = step.kind;
      item.querySelector(".name").textContent = step.name;
      item.querySelector(".shape").textContent = `output ${shape(step.shape)}`;
      item.querySelector(".text").textContent = step.text;
      item.appendChild(stepPicture(step, face));
      list.appendChild(item);
    });
  }

  function stepPicture(step, face) {
    const box = document.createElement("div");
    if (step.kind === "input") {
      box.className = "maps";
      box.appendChild(faceView(step.image, `the input face, ${shape(step.shape)} pixels from 0 (black) to 1 (white)`));
    } else if (step.maps) {
      box.className = "maps";
      step.maps.forEach((url, channel) => box.appendChild(featureMap(url, step, channel)));
      const total = step.shape[step.shape.length - 1];
      if (total > step.maps.length) {
        const more = document.createElement("p");
        more.className = "hint";
        more.textContent = `showing the first ${step.maps.length} of ${total} channels`;
        box.appendChild(more);
      }
    } else {
      box.className = "vector";
      box.appendChild(vectorStrip(step));
      if (step.kind === "softmax") {
        const bars = document.createElement("div");
        bars.className = "bars";
        EMO.bars(bars, face.probabilities, face.label);
        box.appendChild(bars);
      } else if (step.values) {
        const values = document.createElement("p");
        values.className = "values";
        values.textContent = step.values.map((v, i) =>
          (step.labels ? `${step.labels[i]} ` : "") + v.toFixed(2)).join(step.labels ? "   ·   " : "  ");
        box.appendChild(values);
      }
    }
    return box;
  }

  /* A face picture that shows, boxed in red, what the place being pointed at sees. */
  function faceView(url, alt) {
    const view = document.createElement("span");
    view.className = "face-view";
    view.innerHTML = `<img class="map pixelated"><span class="field-box" hidden></span>`;
    view.querySelector("img").src = url;
    view.querySelector("img").alt = alt;
    return view;
  }

  /* One channel of a layer: its cells are the positions of the layer's output. */
  function featureMap(url, step, channel) {
    const [rows, columns] = step.shape;
    const alt = `${EMO.describeMap(step.name, channel, step.channel_ranges && step.channel_ranges[channel], [rows, columns])}` +
      ` (colours on the layer's scale, ${EMO.round(step.range[0])} to ${EMO.round(step.range[1])})`;
    return pointable(step, url, alt, { rows, columns }, (y, x) => ({ channel, y, x }));
  }

  /* A vector folded into rows (``step.columns`` cells each): unit = row × columns + column. */
  function vectorStrip(step) {
    const units = step.shape[0];
    const columns = step.columns;
    const rows = Math.ceil(units / columns);
    const alt = `${step.name}: ${units} values from ${EMO.round(step.range[0])} to ${EMO.round(step.range[1])}` +
      (rows > 1 ? `, in rows of ${columns}` : "");
    const strip = pointable(step, step.strip, alt, { rows, columns },
      (row, column) => row * columns + column < units ? { channel: row * columns + column, y: 0, x: 0 } : null);
    strip.querySelector("img").style.width = `${Math.min(640, columns * (units <= 16 ? 32 : 10))}px`;
    return strip;
  }

  const where = (step, position) => step.shape.length === 3 ?
    `channel ${position.channel}, row ${position.y}, column ${position.x}` :
    `unit ${position.channel}${step.labels ? ` (${step.labels[position.channel]})` : step.kind === "softmax" ? ` (${classes[position.channel]})` : ""}`;

  /* The input pixels [y0, x0, y1, x1] a position sees, from the layer's geometry (sent once per layer). */
  function fieldBox(step, position) {
    const geometry = step.receptive;
    if (!geometry) return null;
    const [height, width] = geometry.input_shape;
    if (geometry.whole_input) return [0, 0, height, width];
    const first = [geometry.start[0] + position.y * geometry.jump[0], geometry.start[1] + position.x * geometry.jump[1]];
    return [Math.max(first[0], 0), Math.max(first[1], 0),
      Math.min(first[0] + geometry.field[0], height), Math.min(first[1] + geometry.field[1], width)];
  }

  /* Box ``box`` (input pixels, or null to clear) on every face view inside ``scope``. */
  function highlight(box, scope, inputShape) {
    for (const mark of scope.querySelectorAll(".face-view .field-box")) {
      mark.hidden = !box;
      if (!box) continue;
      const [height, width] = inputShape;
      Object.assign(mark.style, { top: `${box[0] / height * 100}%`, left: `${box[1] / width * 100}%`,
        height: `${(box[2] - box[0]) / height * 100}%`, width: `${(box[3] - box[1]) / width * 100}%` });
    }
  }

  function sees(box, step) {
    if (!box) return "";
    const [height, width] = step.receptive.input_shape;
    return box[0] === 0 && box[1] === 0 && box[2] === height && box[3] === width ? "it sees the whole face" :
      `it sees rows ${box[0]} to ${box[2] - 1} and columns ${box[1]} to ${box[3] - 1} of the ${height} × ${width} face`;
  }

  /* Show (or, with no position, stop showing) what a place of a layer sees, in every face view of the page. */
  function point(step, position) {
    const explorer = document.getElementById("explorer");
    pointerView.hidden = !position;
    if (!position) {
      highlight(null, explorer);
      pointing.textContent = POINTING_HINT;
      return;
    }
    const box = fieldBox(step, position);
    highlight(box, explorer, step.receptive && step.receptive.input_shape);
    pointing.textContent = `${step.name}, ${where(step, position)}: ${sees(box, step) || "no single part of the face"}.`;
    pointerView.querySelector("p").textContent = pointing.textContent;
  }

  /* A picture of a layer's numbers whose cells can be pointed at with the mouse or the arrow keys;
     a click or Enter opens the operation of the cell. ``positionOf(row, column)`` gives its place
     in the layer's output (null past a vector's last unit). */
  function pointable(step, url, alt, grid, positionOf) {
    const box = document.createElement("span");
    box.className = "map-box";
    box.tabIndex = 0;
    box.setAttribute("role", "button");
    box.setAttribute("aria-label", `${alt}. Arrow keys move over its ${grid.rows} × ${grid.columns} places; ` +
      "Enter shows how the number there was computed.");
    box.innerHTML = `<img class="map pixelated"><span class="cursor" hidden></span>`;
    const img = box.querySelector("img");
    const cursor = box.querySelector(".cursor");
    img.src = url;
    img.alt = alt;
    img.title = alt;
    let cell = [0, 0];

    function show(row, column) {
      const position = positionOf(row, column);
      if (!position) return;
      cell = [row, column];
      cursor.hidden = false;
      Object.assign(cursor.style, { top: `${row / grid.rows * 100}%`, left: `${column / grid.columns * 100}%`,
        height: `${100 / grid.rows}%`, width: `${100 / grid.columns}%` });
      point(step, position);
    }
    function under(event) {
      const rect = img.getBoundingClientRect();
      return [Math.min(grid.rows - 1, Math.max(0, Math.floor((event.clientY - rect.top) / rect.height * grid.rows))),
        Math.min(grid.columns - 1, Math.max(0, Math.floor((event.clientX - rect.left) / rect.width * grid.columns)))];
    }
    function hide() {
      cursor.hidden = true;
      point(step, null);
    }
    img.addEventListener("mousemove", (event) => show(...under(event)));
    box.addEventListener("mouseleave", () => { if (document.activeElement !== box) hide(); });
    box.addEventListener("focus", () => show(...cell));
    box.addEventListener("blur", hide);
    box.addEventListener("click", (event) => {
      show(...under(event));
      const position = positionOf(...cell);
      if (position) openOperation(step, position, url, box);
    });
    box.addEventListener("keydown", (event) => {
      if (MOVES[event.key]) {
        event.preventDefault();
        const [down, right] = MOVES[event.key];
        show(Math.min(grid.rows - 1, Math.max(0, cell[0] + down)), Math.min(grid.columns - 1, Math.max(0, cell[1] + right)));
      } else if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        openOperation(step, positionOf(...cell), url, box);
      }
    });
    box.cell = () => cell;
    return box;
  }

  /* Open the dialog on a picture (its title, the picture enlarged, a caption), the rest cleared;
     focus goes back to ``opener`` when it closes. Returns the request's number. */
  function openZoom(title, url, alt, caption, opener) {
    document.getElementById("zoom-title").textContent = title;
    const image = document.getElementById("zoom-image");
    image.src = url;
    image.alt = alt;
    image.classList.remove("strip");
    document.getElementById("zoom-caption").textContent = caption;
    for (const id of ["zoom-cursor", "zoom-face", "channel-button"]) document.getElementById(id).hidden = true;
    for (const id of ["operation", "channel"]) document.getElementById(id).replaceChildren();
    if (!zoom.open) {
      zoom.showModal();
      zoom.addEventListener("close", () => opener.focus(), { once: true });
    }
    return ++opened;
  }

  /* The dialog on a position: the map enlarged with its cursor, what the place sees, and the operation behind it. */
  async function openOperation(step, position, url, opener) {
    const range = ` Colours run from ${EMO.round(step.range[0])} (dark) to ${EMO.round(step.range[1])} (yellow) across the layer.`;
    const request = openZoom(`${step.name} (${step.kind}): ${where(step, position)}`, url,
      `${step.name}, enlarged, the chosen place outlined`, `${step.name} (${step.kind}), ${where(step, position)}.${range}`, opener);
    const flat = step.shape.length !== 3;
    document.getElementById("zoom-image").classList.toggle("strip", flat);
    const [rows, columns] = flat ? [Math.ceil(step.shape[0] / step.columns), step.columns] : step.shape;
    const [row, column] = flat ? [Math.floor(position.channel / step.columns), position.channel % step.columns] : [position.y, position.x];
    const cursor = document.getElementById("zoom-cursor");
    Object.assign(cursor.style, { top: `${row / rows * 100}%`, left: `${column / columns * 100}%`,
      height: `${100 / rows}%`, width: `${100 / columns}%` });
    cursor.hidden = false;
    const faceFigure = document.getElementById("zoom-face");
    faceFigure.hidden = !step.receptive;
    if (step.receptive) highlight(fieldBox(step, position), faceFigure, step.receptive.input_shape);
    const operation = document.getElementById("operation");
    operation.textContent = "Computing this number from the ones before it…";
    try {
      const answer = await EMO.post("/api/explain", photo, { ...search, face: faceSelect.value || 0, parts: "operation",
        layer: step.name, channel: position.channel, y: position.y, x: position.x });
      if (request !== opened) return;
      OPERATION.render(operation, answer.operation);
      if (answer.receptive_field) highlight(answer.receptive_field.box, faceFigure, answer.receptive_field.input_shape);
      if (step.kind === "conv") {
        const channelButton = document.getElementById("channel-button");
        channelButton.textContent = `What does channel ${position.channel} of ${step.name} look for?`;
        channelButton.hidden = false;
        channelButton.onclick = () => showChannel(step, position.channel);
      }
    } catch (err) {
      if (request === opened) operation.textContent = `Could not compute this: ${err.message}`;
    }
  }

  async function showChannel(step, channel) {
    const box = document.getElementById("channel");
    box.textContent = `Finding the input that excites channel ${channel} most, and the test faces that do: a second or ` +
      "two, the first time for a layer up to half a minute (every test face goes through the network once)…";
    try {
      const answer = await EMO.post("/api/explain", photo, { ...search, face: faceSelect.value || 0, parts: "channel",
        layer: step.name, channel });
      OPERATION.channel(box, answer.channel);
    } catch (err) {
      box.textContent = `Could not find what this channel looks for: ${err.message}`;
    }
  }

  /* An enlarged picture without positions (a first-layer filter), opened by a click or the keyboard. */
  function zoomable(url, alt, caption) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "zoomable";
    button.innerHTML = `<img class="map pixelated">`;
    button.querySelector("img").src = url;
    button.querySelector("img").alt = alt;
    button.title = caption;
    button.addEventListener("click", () => openZoom(caption, url, alt, `${caption}: light = positive weight, dark = negative.`, button));
    return button;
  }

  function renderKernels(kernels) {
    const box = document.getElementById("kernels");
    document.getElementById("kernel-shape").textContent =
      `${kernels.shape[3]} filters of ${kernels.shape[0]} × ${kernels.shape[1]} weights`;
    box.replaceChildren(...kernels.images.map((url, index) =>
      zoomable(url, `first convolution, filter ${index}: its ${kernels.shape[0]} × ${kernels.shape[1]} weights`, `filter ${index}`)));
  }

  function renderGradcam(answer) {
    document.getElementById("target-text").textContent = answer.target.description;
    document.getElementById("cam-overlay").src = answer.gradcam.overlay;
    document.getElementById("cam-heatmap").src = answer.gradcam.heatmap;
    document.getElementById("regions-class").textContent = answer.regions.class;
    document.getElementById("regions").replaceChildren(...answer.regions.rows.map((row) => {
      const tr = document.createElement("tr");
      const drop = Math.max(0, row.drop);
      tr.innerHTML = `<td></td><td></td><td><span class="drop-bar"><span class="fill"></span></span> <span class="value"></span></td>`;
      tr.children[0].textContent = row.region;
      tr.children[1].textContent = EMO.percent(row.probability);
      tr.querySelector(".fill").style.width = `${Math.min(100, drop * 100).toFixed(1)}%`;
      const change = -row.drop * 100;  /* percentage points the class gains (+) or loses (−) */
      tr.querySelector(".value").textContent =
        `${change.toFixed(1) === "0.0" || change.toFixed(1) === "-0.0" ? "±" : change > 0 ? "+" : "−"}${Math.abs(change).toFixed(1)} points`;
      return tr;
    }));
  }

  /* Grad-CAM and regions again for the class and layer chosen; only the latest choice, for the face
     on screen, is drawn (an earlier, slower answer would show the wrong class). */
  async function updateGradcam() {
    const request = ++camAsked, view = explored;
    try {
      const answer = await EMO.post("/api/explain", photo, { ...search,
        face: faceSelect.value || 0, class: camClass.value, layer: camLayer.value, parts: "gradcam,regions" });
      if (request !== camAsked || view !== explored) return;
      status.textContent = "";
      status.classList.remove("error");
      renderGradcam(answer);
    } catch (err) { if (request === camAsked && view === explored) fail(err); }
  }

  start().catch(fail);
})();
