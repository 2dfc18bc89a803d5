/* Helpers every page shares: calling the JSON API, drawing softmax bars, the chosen model. */
"use strict";

const EMO = {
  /* The model chosen on the Models page (the server puts it on <body>). */
  model() { return document.body.dataset.model; },

  /* One of the facts Python serves every page (web/facts.py, on <body> as data-facts): the class
     palette, the default threshold, the digits numbers are shown with, the keypoint colours. */
  fact(name) {
    EMO._facts = EMO._facts || JSON.parse(document.body.dataset.facts);
    if (!(name in EMO._facts)) throw new Error(`no fact ${name} (web/facts.py)`);
    return EMO._facts[name];
  },

  /* The "uncertain" threshold, 0..1: the user's own choice, else the site's default. */
  threshold() {
    const saved = localStorage.getItem("threshold");
    return saved !== null ? Number(saved) : EMO.fact("threshold");
  },
  setThreshold(value) { localStorage.setItem("threshold", String(value)); },

  /* The face detector chosen on the Analyse page ("blazeface" or "haar"), else the server's own default
     (Haar where BlazeFace is not installed); every page uses it, so face numbers agree. */
  detector() { return localStorage.getItem("detector") || document.body.dataset.detector; },
  setDetector(value) { localStorage.setItem("detector", value); },

  /* Where faces are found and read: "browser" (this device, the default) or "server" (the student's choice). */
  engineChoice() { return localStorage.getItem("engine") || "browser"; },
  setEngineChoice(value) { localStorage.setItem("engine", value); },

  /* The in-browser engine for the chosen model, loaded once per page (static/engine/engine.js); rejects
     with a one-line reason when this browser or the site cannot run it. */
  engine() {
    if (!EMO._engine) {
      const url = (name) => new URL(document.body.dataset[name], location.href);
      EMO._engine = (typeof WebAssembly !== "object" ? Promise.reject(new Error("this browser cannot run WebAssembly"))
        : import(new URL("engine/engine.js", url("static")).href)).then((module) =>
        module.loadEngine({ engineUrl: url("engine"), vendorUrl: url("vendor"), model: EMO.model() }));
      EMO._engine.catch(() => {});   /* each caller reports the reason */
    }
    return EMO._engine;
  },

  /* Where a page's pictures are analysed: ``{mode: "browser", engine}`` when the engine loads, ``{mode:
     "server"}`` when the student chose the server (``serverChosen``), else ``{mode: "offer", reason}``: the
     engine could not load, and the page offers the server (offerServer) but sends nothing. A static copy of
     the site has no server to offer: there the engine's failure rejects. */
  async workPlace(serverChosen) {
    if (serverChosen) return { mode: "server" };
    try {
      return { mode: "browser", engine: await EMO.engine() };
    } catch (err) {
      if (EMO.staticSite()) throw err;
      return { mode: "offer", reason: err.message };
    }
  },

  /* The page's #server-offer shown: why faces cannot be read here, in one line, and a button that chooses the
     server, as the page's "Work done" choice does, then calls ``accepted``. Nothing is sent before that click. */
  offerServer(reason, accepted) {
    const offer = document.getElementById("server-offer");
    offer.querySelector(".why").textContent = `Faces cannot be read in this browser: ${reason}.`;
    offer.hidden = false;
    offer.querySelector("button").onclick = () => {
      offer.hidden = true;
      EMO.setEngineChoice("server");
      accepted();
    };
  },

  /* Whether the page was written by `make site` (no server behind it). */
  staticSite() { return document.body.dataset.staticSite === "true"; },

  /* POST an image (Blob or File) with extra fields; resolves to the JSON answer, rejects with its error. */
  async post(url, image, fields = {}) {
    const form = new FormData();
    form.append("file", image, image.name || "image.jpg");
    form.append("model", EMO.model());
    form.append("threshold", EMO.threshold());
    form.append("detector", EMO.detector());
    for (const [key, value] of Object.entries(fields)) form.append(key, value);
    const response = await fetch(url, { method: "POST", body: form });
    return EMO.answer(response);
  },

  /* POST one video frame as the raw JPEG body (no multipart to parse), the fields in the query string. */
  async postFrame(url, frame, fields = {}) {
    const query = new URLSearchParams({ model: EMO.model(), threshold: EMO.threshold(), detector: EMO.detector(), ...fields });
    const response = await fetch(`${url}?${query}`, { method: "POST", body: frame, headers: { "Content-Type": "image/jpeg" } });
    return EMO.answer(response);
  },

  /* The JSON answer of a fetch; rejects with the server's one-line error. */
  async answer(response) {
    let answer;
    try { answer = await response.json(); } catch (err) { answer = { error: `the server answered ${response.status}` }; }
    if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
    return answer;
  },

  /* Softmax probabilities as horizontal bars, one per class of the card, the predicted class's bar in its
     class's colour (the colour of its box). Shares in another order than the card's (a crowd's votes, most
     first) pass ``{ coloured: false }``: a bar's place is then no class index, and no bar takes a class colour. */
  bars(container, probabilities, label, { coloured = true } = {}) {
    container.replaceChildren();
    Object.entries(probabilities).forEach(([name, p], index) => {
      const row = document.createElement("div");
      row.className = "bar" + (name === label ? " top" : "");
      row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>`;
      row.querySelector(".name").textContent = name;
      row.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
      if (coloured && name === label) row.querySelector(".fill").style.background = EMO.colour(index);
      row.querySelector(".value").textContent = `${Math.round(p * 100)}%`;
      container.appendChild(row);
    });
  },

  /* One colour per class index: the server's palette (utils/defaults.py), the one every figure and video uses. */
  colour(index) {
    const palette = EMO.fact("palette");
    return palette[index % palette.length];
  },

  /* One face's box and caption on a canvas, in its class's colour. ``scale`` maps the API's pixels
     (the image as it was read: a very large one is shrunk) to the canvas's. */
  drawFace(ctx, face, text, line, scale = 1) {
    const [x, y, w, h] = face.box.map((v) => v * scale);
    const colour = EMO.colour(Object.keys(face.probabilities).indexOf(face.label));
    const band = line * 8 + 8;
    ctx.font = `bold ${band - 8}px sans-serif`;
    ctx.lineWidth = line;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    ctx.fillStyle = colour;
    ctx.fillRect(x, Math.max(0, y - band), ctx.measureText(text).width + 10, band);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x + 5, Math.max(0, y - band) + band - 6);
  },

  percent(value) { return `${Math.round(value * 100)}%`; },

  /* A number as a student reads it: as many significant digits as Python shows (utils/explain/operation_text.py), no "-0". */
  round(value) { return value === 0 ? "0" : String(Number(Number(value).toPrecision(EMO.fact("digits")))); },

  /* What a feature map shows, for its text alternative: the layer, the channel and its values. */
  describeMap(layer, channel, range, size) {
    const values = range ? `, values ${EMO.round(range[0])} to ${EMO.round(range[1])}` : "";
    return `${layer}, channel ${channel}${size ? ` (${size.join(" × ")})` : ""}${values}`;
  },

  /* The photo handed from Analyse to Explore, kept in this tab only (never sent anywhere else). */
  rememberPhoto(file) {
    const reader = new FileReader();
    reader.onload = () => {
      try { sessionStorage.setItem("photo", reader.result); }
      catch (err) { sessionStorage.removeItem("photo"); }  /* too big for the tab's storage: Explore asks again */
    };
    reader.readAsDataURL(file);
  },
  async rememberedPhoto() {
    const url = sessionStorage.getItem("photo");
    if (!url) return null;
    const [header, data] = url.split(",");   /* read here: the pages' policy lets fetch reach this site only */
    return new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], { type: header.slice(5).split(";")[0] });
  },
};

/* Bars the server draws (Gallery, Models) carry their share as data-share (and the winning bar its class's colour
   as data-colour): set here, since the pages' policy allows no inline style (web/security.py). */
for (const fill of document.querySelectorAll(".fill[data-share]")) {
  fill.style.width = `${(Number(fill.dataset.share) * 100).toFixed(1)}%`;
  if (fill.dataset.colour) fill.style.background = fill.dataset.colour;
}
