/* Explore the CNN: one face through every layer, the first kernels, Grad-CAM for any class, regions. */
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  const status = document.getElementById("status");
  const faceSelect = document.getElementById("face");
  const camClass = document.getElementById("cam-class");
  const camLayer = document.getElementById("cam-layer");
  let photo = null;  /* the Blob being explored */

  function fail(err) {
    status.textContent = `Could not explore this image: ${err.message}`;
    status.classList.add("error");
  }

  async function start() {
    const source = document.getElementById("source");
    if (params.has("gallery")) {
      photo = await (await fetch(`/gallery/image/${Number(params.get("gallery"))}`)).blob();
      source.textContent = "Exploring a test face from the Gallery.";
    } else {
      photo = await EMO.rememberedPhoto();
      source.textContent = photo ? "Exploring your last photo from the Analyse page." :
        "Choose a photo to explore (or analyse one first on the Analyse page).";
    }
    if (photo) await explore(Number(params.get("face") || 0));
  }

  document.getElementById("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    photo = file;
    EMO.rememberPhoto(file);
    document.getElementById("source").textContent = `Exploring ${file.name}.`;
    explore(0);
  });
  faceSelect.addEventListener("change", () => explore(Number(faceSelect.value)));
  camClass.addEventListener("change", updateGradcam);
  camLayer.addEventListener("change", updateGradcam);

  async function explore(face) {
    status.textContent = "Running the face through the network…";
    status.classList.remove("error");
    try {
      const answer = await EMO.post("/api/explain", photo, { face });
      status.textContent = "";
      render(answer);
    } catch (err) { fail(err); }
  }

  function render(answer) {
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
      box.appendChild(mapImage(step.image, step, "the input face"));
    } else if (step.maps) {
      box.className = "maps";
      step.maps.forEach((url, channel) => box.appendChild(mapImage(url, step, `channel ${channel}`)));
      const total = step.shape[step.shape.length - 1];
      if (total > step.maps.length) {
        const more = document.createElement("p");
        more.className = "hint";
        more.textContent = `showing the first ${step.maps.length} of ${total} channels`;
        box.appendChild(more);
      }
    } else if (step.kind === "softmax") {
      box.className = "bars";
      EMO.bars(box, face.probabilities, face.label);
    } else {
      box.className = "vector";
      const strip = mapImage(step.strip, step, `${step.shape[0]} values`);
      strip.style.width = `${Math.min(640, step.shape[0] * 10)}px`;  /* 10 px per value, 64 per row */
      box.appendChild(strip);
      if (step.values) {
        const values = document.createElement("p");
        values.className = "values";
        values.textContent = step.values.map((v, i) =>
          (step.labels ? `${step.labels[i]} ` : "") + v.toFixed(2)).join(step.labels ? "   ·   " : "  ");
        box.appendChild(values);
      }
    }
    return box;
  }

  /* A feature map; clicking it opens it large with its value range. */
  function mapImage(url, step, caption) {
    const img = document.createElement("img");
    img.src = url;
    img.className = "map pixelated";
    img.alt = `${step.name}: ${caption}`;
    img.title = caption;
    img.addEventListener("click", () => {
      document.getElementById("zoom-image").src = url;
      const range = step.range ? ` Colours run from ${step.range[0]} (dark) to ${step.range[1]} (yellow) across the layer.` : "";
      document.getElementById("zoom-caption").textContent = `${step.name} (${step.kind}), ${caption}.${range}`;
      document.getElementById("zoom").showModal();
    });
    return img;
  }

  function renderKernels(kernels) {
    const box = document.getElementById("kernels");
    document.getElementById("kernel-shape").textContent =
      `${kernels.shape[3]} filters of ${kernels.shape[0]} × ${kernels.shape[1]} weights`;
    box.replaceChildren(...kernels.images.map((url, index) =>
      mapImage(url, { name: "first convolution", kind: "kernel" }, `filter ${index}`)));
  }

  function renderGradcam(answer) {
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

  async function updateGradcam() {
    try {
      const answer = await EMO.post("/api/explain", photo, {
        face: faceSelect.value || 0, class: camClass.value, layer: camLayer.value, parts: "gradcam,regions" });
      renderGradcam(answer);
    } catch (err) { fail(err); }
  }

  start().catch(fail);
})();
