/* Analyse: upload (button or drag and drop) -> boxes on the photo, one card per face. Faces are found and
   labelled on this device by the in-browser engine (static/engine/); the server does it when the student
   chooses it or the Haar detector (server only), and is offered when the engine cannot load. Grad-CAM
   and the explorer need the server: asked for only when the student opens them. The result region
   carries the faces as the JSON API gives them (data-result), for tests and tools. A module: it marks
   low-confidence faces with the engine's own rule (static/shared/uncertain.js). */
import { isUncertain } from "../shared/uncertain.js";

const WHERE = {
  browser: "Faces are found and read on this device: the photo is not sent anywhere.",
  server: "The photo is sent to this site's server, analysed, and forgotten.",
  gradcam: "Faces were found and read on this device; for Grad-CAM the photo was sent to this site's server, and forgotten.",
};
const [fileInput, drop, slider, sliderValue, status, canvas] =
  ["file", "drop", "threshold", "threshold-value", "status", "photo"].map((id) => document.getElementById(id));
let last = null;  /* {bitmap, answer} of the photo on screen */
let analysed = 0;  /* the latest photo asked for: a late answer for an earlier one is dropped */
let waiting = null;  /* a photo chosen while the server is offered, sent only if the student accepts */

slider.value = Math.round(EMO.threshold() * 100);
sliderValue.textContent = `${slider.value}%`;
slider.addEventListener("input", () => {
  sliderValue.textContent = `${slider.value}%`;
  EMO.setThreshold(slider.value / 100);
  if (last) flagUncertain();
});

const detectorSelect = document.getElementById("detector");   /* these two: none on a static copy of the site */
const engineSelect = document.getElementById("engine");
const keypointsBox = document.getElementById("keypoints");
const gradcamButton = document.getElementById("gradcam");
if (detectorSelect) {
  detectorSelect.value = EMO.detector();
  engineSelect.value = EMO.engineChoice();
  for (const [select, remember] of [[detectorSelect, EMO.setDetector], [engineSelect, EMO.setEngineChoice]]) {
    select.addEventListener("change", () => {
      remember(select.value);
      if (last) analyse(last.file); else where().catch(() => {});
    });
  }
  gradcamButton.addEventListener("click", () => last && showGradcams(last.file, analysed));
}
keypointsBox.addEventListener("change", () => last && drawPhoto());

fileInput.addEventListener("change", () => fileInput.files[0] && analyse(fileInput.files[0]));
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("dragging"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("dragging"));
}
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  if (event.dataTransfer.files[0]) analyse(event.dataTransfer.files[0]);
});

/* Where this photo will be analysed: "browser", "server" or, when the engine cannot load, "offer" (the
   server offered, saying why; the photo waits for the student's click). Rejects on a static copy of the site
   whose engine cannot load. */
async function where() {
  const place = await EMO.workPlace(Boolean(detectorSelect) && (EMO.engineChoice() === "server" || EMO.detector() === "haar"))
    .catch((err) => { throw new Error(`faces cannot be read in this browser: ${err.message}`); });
  document.getElementById("where").textContent = { browser: WHERE.browser, server: WHERE.server, offer: "" }[place.mode];
  if (place.mode === "offer") {
    EMO.offerServer(place.reason, () => {
      engineSelect.value = "server";
      if (waiting) analyse(waiting); else where().catch(() => {});
    });
  }
  return place.mode;
}

/* The faces of a photo, found on this device or on the server: ``{answer, bitmap}``. */
async function facesOf(file, mode) {
  if (mode === "server") {
    const answer = await EMO.post("/api/predict", file);
    return { answer, bitmap: await createImageBitmap(file, { imageOrientation: "from-image" }) };
  }
  const engine = await EMO.engine();
  const bitmap = await engine.decode(file);
  const answer = await engine.analysePhoto(bitmap, EMO.threshold());
  delete answer.chosen;
  return { answer, bitmap };
}

async function analyse(file) {
  const request = ++analysed;
  status.textContent = "Looking for faces…";
  status.classList.remove("error");
  try {
    const mode = await where();
    if (mode === "offer") {
      waiting = file;
      status.textContent = "";
      return;
    }
    waiting = null;
    const { answer, bitmap } = await facesOf(file, mode);
    if (request !== analysed) return bitmap.close();
    if (last) last.bitmap.close();
    last = { bitmap, answer, file };
    if (!EMO.staticSite()) EMO.rememberPhoto(file);
    drawPhoto();
    showFaces(answer);
    status.textContent = answer.faces[0].whole_image ? "" :
      `${answer.faces.length} face${answer.faces.length > 1 ? "s" : ""} found.`;
    const result = document.getElementById("result");
    result.dataset.result = JSON.stringify(answer.faces);
    result.hidden = false;
    if (gradcamButton) document.getElementById("gradcam-ask").hidden = mode === "server";
    if (mode === "server") await showGradcams(file, request);   /* the photo is on the server already */
  } catch (err) {
    if (request !== analysed) return;
    status.textContent = `Could not analyse this file: ${err.message}`;
    status.classList.add("error");
  }
}

/* The photo with every face boxed and labelled. Boxes are in the pixels of the image as it was read
   (upright; a picture over 4096 px shrunk, on this device as on the server), so they are scaled to the photo. */
function drawPhoto() {
  const { bitmap, answer } = last;
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const scale = bitmap.width / answer.image.width;
  const line = Math.max(2, Math.round(bitmap.width / 300));
  answer.faces.forEach((face, index) => {
    if (face.whole_image) return;
    EMO.drawFace(ctx, face, `${index + 1}: ${face.label} ${EMO.percent(face.confidence)}`, line, scale);
    if (keypointsBox.checked) drawKeypoints(ctx, face.keypoints, line, scale);
  });
}

/* The detector's keypoints as dots, and the eye line the face is turned upright by. */
function drawKeypoints(ctx, points, line, scale) {
  const at = (point) => point.map((v) => v * scale);
  if (points.right_eye && points.left_eye) {
    ctx.strokeStyle = EMO.fact("eye_line");
    ctx.lineWidth = line;
    ctx.beginPath();
    ctx.moveTo(...at(points.right_eye));
    ctx.lineTo(...at(points.left_eye));
    ctx.stroke();
  }
  ctx.fillStyle = EMO.fact("keypoint");
  for (const [x, y] of Object.values(points).map(at)) {
    ctx.beginPath();
    ctx.arc(x, y, line * 1.5, 0, 2 * Math.PI);
    ctx.fill();
  }
}

/* One card per face: label, confidence, softmax bars; Grad-CAM arrives a moment later. */
function showFaces(answer) {
  const container = document.getElementById("faces");
  const template = document.getElementById("face-card");
  document.getElementById("whole").hidden = !answer.faces[0].whole_image;
  container.replaceChildren(...answer.faces.map((face, index) => {
    const card = template.content.firstElementChild.cloneNode(true);
    card.querySelector(".number").textContent = face.whole_image ? "Whole image:" : `Face ${index + 1}:`;
    card.querySelector(".label").textContent = face.label;
    card.querySelector(".confidence").textContent = EMO.percent(face.confidence);
    EMO.bars(card.querySelector(".bars"), face.probabilities, face.label);
    card.dataset.box = face.box.join(",");   /* the server's answers find their card by it */
    const explore = card.querySelector(".explore-link");
    if (explore) explore.href = `/explore?box=${card.dataset.box}`;
    return card;
  }));
  flagUncertain();
}

/* The low-confidence warning, against the slider's threshold. */
function flagUncertain() {
  const threshold = EMO.threshold();
  [...document.getElementById("faces").children].forEach((card, index) => {
    card.querySelector(".uncertain").hidden = !isUncertain(last.answer.faces[index].confidence, threshold);
  });
}

/* Grad-CAM of every face on screen for the label on its card, from one request (one face search for the
   whole photo). Each face is named by its box and each answer carries it back, so a map lands on the card
   of the face it explains, whatever order the server finds the faces in. */
async function showGradcams(file, request) {
  const faces = last.answer.faces;
  let answer;
  try {
    answer = await EMO.post("/api/explain", file, { face: "all", parts: "gradcam",
      boxes: faces.map((face) => face.box.join(",")).join(";"), classes: faces.map((face) => face.label).join(";") });
  } catch (err) {
    if (request !== analysed) return;
    status.textContent = `Grad-CAM could not be computed: ${err.message}`;
    return status.classList.add("error");
  }
  if (request !== analysed) return;
  document.getElementById("gradcam-ask").hidden = true;
  const sentence = document.getElementById("where");
  if (sentence.textContent === WHERE.browser) sentence.textContent = WHERE.gradcam;
  const cards = [...document.getElementById("faces").children];
  for (const face of answer.faces) {
    const card = cards.find((element) => element.dataset.box === face.box.join(","));
    if (!card) continue;
    if (face.error) {   /* the browser found a face where the server finds none */
      card.querySelector(".cam-note").textContent = "No Grad-CAM: the server finds no face at this face's box.";
      card.querySelector(".cam-note").hidden = false;
      continue;
    }
    const { overlay, precision } = face.gradcam;
    card.querySelector(".cam img").src = overlay;
    card.querySelector(".cam img").alt = `Grad-CAM of '${face.gradcam.class}' on this face`;
    card.querySelector(".cam figcaption").textContent =
      `Grad-CAM of '${face.gradcam.class}' (computed on this site's server, in ${precision}): where the network looked`;
    card.querySelector(".cam").hidden = false;
  }
}
/* Say at once where the work will happen (and start loading the engine meanwhile). */
where().catch((err) => {
  status.textContent = `${err.message[0].toUpperCase()}${err.message.slice(1)}.`;
  status.classList.add("error");
});
