/* Live: the browser's camera, its faces found and labelled on this device by the in-browser engine
   (static/engine/), or, when the student chooses it (offered when the engine cannot load), a few frames a
   second sent to /api/predict. The result region says which (data-engine), how many frames were analysed since the
   camera started (data-frames) and the first face's label (data-label), for tests and tools. After each
   analysed frame it sends an "analysed" event (detail: the faces and, on this device, the engine's chosen
   faces with their features and whether each was seen in this frame), which "Calibrate to me"
   (calibrate.js) listens to. */
"use strict";
(() => {
  const SERVER_FRAMES_PER_SECOND = 5;
  const LAYER_EVERY = 2;   /* the chosen layer's maps come with every 2nd frame (on the server: 2.5 times a second, bench/bench_web.py) */
  const TIMELINE_SECONDS = 60;
  const TIMELINE_COLUMNS_PER_SECOND = 5;
  const WHERE = {
    browser: "Faces are found and read on this device: your camera's picture never leaves it.",
    server: "A few frames a second are sent to this site's server, classified, and forgotten.",
  };
  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const status = document.getElementById("status");
  const result = document.getElementById("live-result");
  const cameraSelect = document.getElementById("camera");
  const engineSelect = document.getElementById("engine");   /* none on a static copy of the site */
  const timeline = document.getElementById("timeline");
  const startButton = document.getElementById("start");
  const stopButton = document.getElementById("stop");
  const layerSelect = document.getElementById("live-layer");
  const grab = document.createElement("canvas");
  let stream = null;
  let timer = null;
  let busy = false;
  let history = [];  /* [{time, label index or -1, confidence}] */
  let classes = [];
  let answers = [];  /* when recent answers arrived, for the frame rate shown */
  let frames = 0;    /* frames analysed since the camera started */
  let mode = "";     /* "browser" or "server": where this camera's frames are analysed */
  let engine = null;
  let analyser = null;
  let layerNow = false;   /* a layer was just chosen: show it with the next frame */
  let running = 0;   /* which start() the loop belongs to: a stopped loop's late frame is dropped */

  function say(message, isError = false) {
    status.textContent = message;
    status.classList.toggle("error", isError);
  }

  /* Why a camera could not be opened, in words a student can act on. */
  function cameraProblem(err) {
    if (!navigator.mediaDevices) {
      return "This browser only allows the camera on a secure page: open the site as http://localhost:… or over HTTPS.";
    }
    if (err.name === "NotAllowedError" || err.name === "SecurityError") {
      return "The camera was blocked. Allow it in the browser's address bar (camera icon) and press Start again.";
    }
    if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
      return "No camera was found. Plug one in (or close other programs using it) and press Start again.";
    }
    if (err.name === "NotReadableError") return "The camera is busy: another program is using it.";
    return `The camera could not start: ${err.message}`;
  }

  async function listCameras() {
    const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    document.getElementById("camera-choice").hidden = cameras.length < 2;
    const current = stream && stream.getVideoTracks()[0].getSettings().deviceId;
    cameraSelect.replaceChildren(...cameras.map((camera, i) =>
      new Option(camera.label || `camera ${i + 1}`, camera.deviceId, false, camera.deviceId === current)));
  }

  async function start(deviceId) {
    stop();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return say(cameraProblem({}), true);
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: deviceId ? { deviceId: { exact: deviceId } } : { width: 640, height: 480 }, audio: false });
    } catch (err) {
      return say(cameraProblem(err), true);
    }
    video.srcObject = stream;
    await video.play();
    say("");
    startButton.hidden = true;
    stopButton.hidden = false;
    await listCameras();
    frames = 0;
    result.dataset.frames = "0";
    await run();
  }

  /* Where the frames go: the in-browser engine unless the student chose the server. When the engine cannot
     load, the server is offered, saying why in one line, and nothing is sent until the student accepts (a
     static copy of the site has no server to offer). */
  async function chooseMode() {
    const place = await EMO.workPlace(Boolean(engineSelect) && EMO.engineChoice() === "server").catch((err) => {
      show("", "");
      throw new Error(`Faces cannot be read in this browser: ${err.message}.`);
    });
    engine = place.engine || null;
    if (place.mode === "offer") {
      EMO.offerServer(place.reason, () => (stream ? run() : chooseMode()));
      return show("", "");
    }
    return show(place.mode, place.mode === "browser" ? WHERE.browser : WHERE.server);
  }

  function show(where, sentence) {
    mode = where;
    result.dataset.engine = where;
    document.getElementById("where").textContent = sentence;
    if (engineSelect) engineSelect.value = where || "browser";
  }

  /* Analyse the camera's frames where chooseMode says, until stopped. */
  async function run() {
    const run = ++running;
    clearInterval(timer);
    try {
      await chooseMode();
    } catch (err) {
      stop();
      return say(err.message, true);
    }
    if (run !== running || !stream || !mode) return;   /* no mode: the server is offered, not yet chosen */
    if (mode === "server") {
      timer = setInterval(sendFrame, 1000 / SERVER_FRAMES_PER_SECOND);
      return;
    }
    analyser = engine.analyser();
    /* Each camera frame is analysed once, and the next one as soon as this one is done: when the
       analysis outlasts a frame, a newer frame is already there and waiting for yet another would
       idle half a frame on average. ``presented`` counts the frames the camera has shown. */
    const frameCallbacks = "requestVideoFrameCallback" in video;
    let presented = 0;
    const watch = () => video.requestVideoFrameCallback((now, meta) => {
      presented = meta.presentedFrames;
      if (run === running && stream) watch();
    });
    const soon = new MessageChannel();   // a task at once (a chain of setTimeout(0) waits 4 ms each)
    soon.port1.onmessage = () => step();
    const next = (analysed) => {
      if (!frameCallbacks) requestAnimationFrame(() => step());
      else if (presented > analysed) soon.port2.postMessage(null);
      else video.requestVideoFrameCallback((now, meta) => step(now, meta));
    };
    const step = async (now, meta) => {
      if (run !== running || !stream) return;
      const analysed = meta ? meta.presentedFrames : presented;
      if (video.videoWidth) {
        try {
          const faces = await engine.analyseFrame(analyser, video, EMO.threshold());
          if (run !== running) return;
          answered(faces);
          if (layerSelect.value && wantLayer() && analyser.chosen.length) {
            showLayer(await engine.layer(analyser.chosen[0].input, layerSelect.value, engine.constants.live_channels));
          }
        } catch (err) {
          stop();
          return say(`The analysis stopped: ${err.message}`, true);
        }
      }
      next(analysed);
    };
    if (frameCallbacks) watch();
    next(0);
  }

  function stop() {
    running += 1;
    clearInterval(timer);
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    startButton.hidden = false;
    stopButton.hidden = true;
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  }

  /* One frame to the API; a frame is skipped while the previous one is still on its way. */
  async function sendFrame() {
    if (busy || !video.videoWidth) return;
    busy = true;
    grab.width = video.videoWidth;
    grab.height = video.videoHeight;
    grab.getContext("2d").drawImage(video, 0, 0);
    try {
      const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.8));
      const layer = layerSelect.value && wantLayer() ? { layer: layerSelect.value } : {};
      const run = running;
      const answer = await EMO.postFrame("/api/predict", blob, { detail: "fast", ...layer });
      if (run !== running) return;
      answered(answer.faces);
      if (answer.layer && layerSelect.value === answer.layer.name) showLayer(answer.layer);
    } catch (err) {
      say(`The server did not answer: ${err.message}`, true);
    } finally {
      busy = false;
    }
  }

  /* Whether this frame brings the chosen layer's maps: every LAYER_EVERY-th, and the first after a choice. */
  function wantLayer() {
    const now = layerNow || frames % LAYER_EVERY === 0;
    layerNow = false;
    return now;
  }

  /* One analysed frame's faces on the page, and in the result region's data attributes. */
  function answered(faces) {
    frames += 1;
    draw(faces);
    remember(faces[0]);
    const real = faces.filter((face) => !face.whole_image);
    result.dataset.frames = String(frames);
    result.dataset.label = real.length ? real[0].label : "";
    const now = performance.now();
    answers = answers.filter((t) => now - t < 2000).concat(now);
    document.getElementById("rate").textContent = `${(answers.length / 2).toFixed(1)} frames/s analysed`;
    const [chosen, seen] = mode === "browser" && analyser ? [analyser.chosen, analyser.seen] : [null, null];
    result.dispatchEvent(new CustomEvent("analysed", { detail: { faces, chosen, seen } }));
  }

  function draw(faces) {
    if (overlay.width !== video.videoWidth || overlay.height !== video.videoHeight) {
      overlay.width = video.videoWidth;
      overlay.height = video.videoHeight;
    }
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const real = faces.filter((face) => !face.whole_image);
    for (const face of real) {
      EMO.drawFace(ctx, face, `${face.label} ${EMO.percent(face.confidence)}${face.uncertain ? " ?" : ""}`, 3);
    }
    const main = real[0];
    document.getElementById("now").textContent = main ? `${main.label} (${EMO.percent(main.confidence)})` : "no face";
    if (main) EMO.bars(document.getElementById("live-bars"), main.probabilities, main.label);
  }

  /* The chosen layer's first maps for the face in front of the camera, on one colour scale. */
  function showLayer(layer) {
    const box = document.getElementById("live-maps");
    const channels = layer.shape[layer.shape.length - 1];
    document.getElementById("live-layer-title").textContent = `${layer.name} (${layer.kind}): the first ${layer.maps.length} ` +
      `of ${channels} channels, colours from ${EMO.round(layer.range[0])} (dark) to ${EMO.round(layer.range[1])} (yellow)`;
    while (box.children.length < layer.maps.length) {
      const img = document.createElement("img");
      img.className = "map pixelated";
      box.appendChild(img);
    }
    while (box.children.length > layer.maps.length) box.lastChild.remove();
    layer.maps.forEach((url, channel) => {
      const img = box.children[channel];
      img.src = url;
      img.alt = EMO.describeMap(layer.name, channel, layer.channel_ranges[channel], layer.shape.slice(0, 2));
    });
    document.getElementById("live-layer-box").hidden = false;
  }

  /* The emotion-over-time strip: one coloured column per answer, grey when no face was seen. */
  function remember(face) {
    const now = performance.now();
    if (face && !classes.length) {
      classes = Object.keys(face.probabilities);
      document.getElementById("legend").replaceChildren(...classes.map((name, i) => {
        const entry = document.createElement("span");
        const swatch = document.createElement("i");
        swatch.style.background = EMO.colour(i);
        entry.append(swatch, name);   /* the card's class name as text, never as HTML */
        return entry;
      }));
    }
    const seen = face && !face.whole_image;
    history.push({ time: now, label: seen ? classes.indexOf(face.label) : -1, confidence: seen ? face.confidence : 0 });
    history = history.filter((entry) => now - entry.time < TIMELINE_SECONDS * 1000);
    timeline.width = timeline.clientWidth;
    const ctx = timeline.getContext("2d");
    ctx.clearRect(0, 0, timeline.width, timeline.height);
    const column = timeline.width / (TIMELINE_SECONDS * TIMELINE_COLUMNS_PER_SECOND);
    for (const entry of history) {
      const x = timeline.width - ((now - entry.time) / 1000) * TIMELINE_COLUMNS_PER_SECOND * column - column;
      const height = entry.label < 0 ? 4 : Math.max(4, entry.confidence * timeline.height);
      ctx.fillStyle = entry.label < 0 ? "#ccc" : EMO.colour(entry.label);
      ctx.fillRect(x, timeline.height - height, Math.ceil(column), height);
    }
  }

  startButton.addEventListener("click", () => start());
  stopButton.addEventListener("click", stop);
  cameraSelect.addEventListener("change", () => start(cameraSelect.value));
  if (engineSelect) {
    engineSelect.value = EMO.engineChoice();
    engineSelect.addEventListener("change", () => {
      EMO.setEngineChoice(engineSelect.value);
      if (stream) run(); else chooseMode().catch((err) => say(err.message, true));
    });
  }
  layerSelect.addEventListener("change", () => {
    layerNow = true;   /* the next frame brings the new layer */
    if (!layerSelect.value) document.getElementById("live-layer-box").hidden = true;
  });
  if (!window.isSecureContext) say(cameraProblem({}), true);
  else chooseMode().catch((err) => say(err.message, true));   /* the page says at once where the work will happen */
})();
