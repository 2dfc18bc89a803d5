/* Live: the browser's camera, a few frames a second to /api/predict, boxes and labels over the video. */
"use strict";
(() => {
  const FRAMES_PER_SECOND = 5;
  const LAYER_EVERY = 2;   /* the chosen layer's maps come with every 2nd frame: 2.5 times a second (bench/bench_web.py) */
  const TIMELINE_SECONDS = 60;
  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const status = document.getElementById("status");
  const cameraSelect = document.getElementById("camera");
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
  let sent = [];     /* when recent answers arrived, for the frame rate shown */
  let frames = 0;    /* frames sent, to ask for the layer's maps with every LAYER_EVERY-th */

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
    timer = setInterval(sendFrame, 1000 / FRAMES_PER_SECOND);
  }

  function stop() {
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
      const layer = layerSelect.value && frames % LAYER_EVERY === 0 ? { layer: layerSelect.value } : {};
      frames += 1;
      const answer = await EMO.postFrame("/api/predict", blob, { detail: "fast", ...layer });
      draw(answer.faces);
      if (answer.layer && layerSelect.value === answer.layer.name) showLayer(answer.layer);
      remember(answer.faces[0]);
      const now = performance.now();
      sent = sent.filter((t) => now - t < 2000).concat(now);
      document.getElementById("rate").textContent = `${(sent.length / 2).toFixed(1)} frames/s analysed`;
    } catch (err) {
      say(`The server did not answer: ${err.message}`, true);
    } finally {
      busy = false;
    }
  }

  function draw(faces) {
    overlay.width = video.videoWidth;
    overlay.height = video.videoHeight;
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
      document.getElementById("legend").innerHTML = classes.map((name, i) =>
        `<span><i style="background:${EMO.colour(i)}"></i>${name}</span>`).join("");
    }
    const seen = face && !face.whole_image;
    history.push({ time: now, label: seen ? classes.indexOf(face.label) : -1, confidence: seen ? face.confidence : 0 });
    history = history.filter((entry) => now - entry.time < TIMELINE_SECONDS * 1000);
    timeline.width = timeline.clientWidth;
    const ctx = timeline.getContext("2d");
    ctx.clearRect(0, 0, timeline.width, timeline.height);
    const column = timeline.width / (TIMELINE_SECONDS * FRAMES_PER_SECOND);
    for (const entry of history) {
      const x = timeline.width - ((now - entry.time) / 1000) * FRAMES_PER_SECOND * column - column;
      const height = entry.label < 0 ? 4 : Math.max(4, entry.confidence * timeline.height);
      ctx.fillStyle = entry.label < 0 ? "#ccc" : EMO.colour(entry.label);
      ctx.fillRect(x, timeline.height - height, Math.ceil(column), height);
    }
  }

  startButton.addEventListener("click", () => start());
  stopButton.addEventListener("click", stop);
  cameraSelect.addEventListener("change", () => start(cameraSelect.value));
  layerSelect.addEventListener("change", () => {
    frames = 0;   /* the next frame brings the new layer */
    if (!layerSelect.value) document.getElementById("live-layer-box").hidden = true;
  });
  if (!window.isSecureContext) say(cameraProblem({}), true);
})();
