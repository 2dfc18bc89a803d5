/* The operation behind one number of a layer, laid out from the numbers /api/explain sends
   (parts=operation): the page computes nothing, it only arranges them. Numbers show three
   significant digits; the result's exact value is in its data-value. */
"use strict";

const OPERATION = (() => {
  const SHOWN_CHANNELS = 8;   /* a convolution's input planes drawn as grids before "show all" */
  const STRIP_COLUMNS = 64;   /* a vector's values are drawn in rows of this many */

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const shape = (dims) => dims.join(" × ");
  const place = (view) => view.output_shape.length === 3 ?
    `row ${view.position.y}, column ${view.position.x}, channel ${view.position.channel}` : `unit ${view.position.channel}`;

  /* A small table of numbers; ``marks(i, j)`` gives a cell's extra class ("pad", "winner") and title. */
  function grid(values, caption, marks = () => null) {
    const table = element("table", "op-grid");
    table.appendChild(element("caption", "", caption));
    values.forEach((row, i) => {
      const tr = table.insertRow();
      row.forEach((value, j) => {
        const cell = tr.insertCell();
        const mark = marks(i, j);
        cell.textContent = EMO.round(value);
        if (mark) {
          cell.className = mark.className;
          cell.title = mark.title;
        }
      });
    });
    return table;
  }

  const plane = (grid3, channel) => grid3.map((row) => row.map((cells) => cells[channel]));
  const padMark = (view) => (i, j) => view.padding[i][j] ? { className: "pad", title: "padding: outside the input, read as 0" } : null;

  /* The result, then whether it is the layer's own output: the exact numbers sit in data-value. */
  function resultLine(view, before) {
    const line = element("p", "op-equation");
    line.append(before || "result ");
    const result = element("output", "op-result", EMO.round(view.result ?? view.output));
    result.dataset.value = String(view.result ?? view.output);
    line.appendChild(result);
    const check = element("p", "op-check", view.check);
    check.dataset.value = String(view.output);
    return [line, check];
  }

  /* "sum S + bias B = P → ReLU → ": how a weighted sum becomes the result (no bias, no activation: shorter). */
  function summed(view, what) {
    const bias = view.bias ? ` + bias ${EMO.round(view.bias)} = ${EMO.round(view.pre_activation)}` : "";
    const activation = view.activation === "linear" ? " = " : ` → ${view.activation === "relu" ? "ReLU" : view.activation} → `;
    return `${what} ${EMO.round(view.sum)}${bias}${activation}`;
  }

  /* The planes of a convolution's window: each is an input channel, or a separable convolution's depthwise filter. */
  const planeNoun = (view) => view.kind === "separable" ? "depthwise filter" : "input channel";
  const planeNumber = (view, p) => view.kind === "separable" ? p : view.input_channels[p];
  const planeName = (view, p) => `${planeNoun(view)} ${planeNumber(view, p)}` +
    (view.kind === "separable" ? ` (on input channel ${view.input_channels[p]})` : "");

  /* The window, weights and products plane by plane (the first few as grids, all as their sums). */
  function planes(view, box) {
    const count = view.kernel[0][0].length;
    const sums = [...Array(count).keys()].map((c) => plane(view.products, c).flat().reduce((a, b) => a + b, 0));
    box.appendChild(element("p", "hint", `Input rows ${view.rows.join(", ")} and columns ${view.columns.join(", ")}` +
      (view.padding.flat().some(Boolean) ? "; the hatched cells are the zero padding around the border." : ".")));
    const channelsBox = element("div", "op-channels");
    const drawn = (shown) => {
      for (let c = channelsBox.children.length; c < shown; c += 1) {
        const figure = element("figure", "op-channel");
        figure.append(grid(plane(view.window, c), "input", padMark(view)), element("span", "op-sign", "×"),
          grid(plane(view.kernel, c), "weights"), element("span", "op-sign", "="), grid(plane(view.products, c), "products"));
        figure.appendChild(element("figcaption", "", `${planeName(view, c)}: the products add up to ${EMO.round(sums[c])}`));
        channelsBox.appendChild(figure);
      }
    };
    drawn(Math.min(SHOWN_CHANNELS, count));
    box.appendChild(channelsBox);
    if (count > SHOWN_CHANNELS) {
      const more = element("button", "button secondary", `Show all ${count} ${planeNoun(view)}s`);
      more.type = "button";
      more.addEventListener("click", () => { drawn(count); more.remove(); });
      box.appendChild(more);
      const list = element("ol", "op-sums");
      list.setAttribute("aria-label", `the sum of each ${planeNoun(view)}'s products`);
      sums.forEach((sum, c) => list.appendChild(element("li", sum > 0 ? "positive" : sum < 0 ? "negative" : "",
        `${planeNumber(view, c)}: ${EMO.round(sum)}`)));
      box.append(element("p", "", `Each ${planeNoun(view)}'s products add up to:`), list);
    }
  }

  function conv(view, box) {
    planes(view, box);
    box.append(...resultLine(view, summed(view, "sum of all products")));
  }

  /* Depthwise: a filter per input channel (or several), each giving one sum; pointwise: those sums weighted and added. */
  function separable(view, box) {
    box.appendChild(element("h4", "", "Depthwise step"));
    planes(view, box);
    box.appendChild(element("h4", "", "Pointwise step"));
    const table = element("table", "op-table");
    table.appendChild(element("caption", "", `output channel ${view.position.channel}'s weight on each depthwise filter's sum`));
    const head = table.createTHead().insertRow();
    for (const title of ["depthwise filter", "its sum", "weight", "weight × sum"]) head.appendChild(element("th", "", title));
    const body = table.createTBody();
    view.depthwise.forEach((sum, index) => {
      const row = body.insertRow();
      for (const text of [String(index), EMO.round(sum), EMO.round(view.pointwise[index]),
        EMO.round(view.pointwise_products[index])]) row.insertCell().textContent = text;
      const product = view.pointwise_products[index];
      row.className = product > 0 ? "positive" : product < 0 ? "negative" : "";
    });
    box.append(table, ...resultLine(view, summed(view, "sum of the pointwise products")));
  }

  function facts(pairs) {
    const list = element("dl", "op-facts");
    for (const [name, value] of pairs) list.append(element("dt", "", name), element("dd", "", value));
    return list;
  }

  function batchnorm(view, box) {
    box.append(facts([["value in", EMO.round(view.input)], ["mean (learned)", EMO.round(view.mean)],
      ["variance (learned)", EMO.round(view.variance)], ["epsilon", String(view.epsilon)],
      ["gamma (scale)", EMO.round(view.gamma)], ["beta (shift)", EMO.round(view.beta)]]),
      element("p", "op-formula", "(value − mean) / √(variance + epsilon) × gamma + beta"),
      element("p", "op-formula", view.formula), ...resultLine(view));
  }

  /* A map of numbers (a channel, or a vector in rows) as grey cells, the chosen one outlined. */
  function heatmap(values, low, high, chosen, label) {
    const rows = Array.isArray(values[0]) ? values :
      [...Array(Math.ceil(values.length / STRIP_COLUMNS)).keys()].map((r) => values.slice(r * STRIP_COLUMNS, (r + 1) * STRIP_COLUMNS));
    const canvas = element("canvas", "op-map pixelated");
    canvas.width = rows[0].length;
    canvas.height = rows.length;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", label);
    const context = canvas.getContext("2d");
    const image = context.createImageData(canvas.width, canvas.height);
    rows.forEach((row, y) => row.forEach((value, x) => {
      const level = Math.round(255 * (high > low ? (value - low) / (high - low) : 0));
      image.data.set([level, level, level, 255], (y * canvas.width + x) * 4);
    }));
    context.putImageData(image, 0, 0);
    canvas.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
    if (rows.length < rows[0].length / 4) canvas.style.width = `${Math.min(640, canvas.width * 8)}px`;  /* a vector: wide cells */
    const frame = element("span", "op-map-frame");
    frame.appendChild(canvas);
    const [y, x] = chosen;
    const cursor = element("span", "cursor");
    Object.assign(cursor.style, { left: `${x / canvas.width * 100}%`, top: `${y / canvas.height * 100}%`,
      width: `${100 / canvas.width}%`, height: `${100 / canvas.height}%` });
    frame.appendChild(cursor);
    return frame;
  }

  function activation(view, box) {
    const flat = !Array.isArray(view.input_map[0]);
    const all = [view.input_map, view.output_map].flat(2);
    const low = Math.min(...all), high = Math.max(...all);
    const chosen = flat ? [Math.floor(view.position.channel / STRIP_COLUMNS), view.position.channel % STRIP_COLUMNS] :
      [view.position.y, view.position.x];
    const what = flat ? "the layer's values" : `channel ${view.position.channel}`;
    const pair = element("div", "op-pair");
    for (const [values, name] of [[view.input_map, "before"], [view.output_map, "after"]]) {
      const figure = element("figure");
      figure.append(heatmap(values, low, high, chosen, `${what} ${name} ${view.function}, values ${EMO.round(Math.min(...[values].flat(2)))} ` +
        `to ${EMO.round(Math.max(...[values].flat(2)))} (black ${EMO.round(low)}, white ${EMO.round(high)})`),
        element("figcaption", "", `${name} ${view.function}`));
      pair.appendChild(figure);
    }
    const zeroed = flat ? [["set to zero in the layer", EMO.percent(view.zeroed.layer)]] :
      [["set to zero in this channel", EMO.percent(view.zeroed.channel)], ["set to zero in the whole layer", EMO.percent(view.zeroed.layer)]];
    box.append(pair, facts([["value in", EMO.round(view.input)], ["value out", EMO.round(view.result)], ...zeroed]),
      ...resultLine(view));
  }

  function pool(view, box) {
    const winner = view.winner || [-1, -1];
    const marks = (i, j) => i === winner[0] && j === winner[1] ? { className: "winner", title: "the largest value: kept" } :
      view.padding && view.padding[i][j] ? { className: "pad", title: "padding: left out" } : null;
    box.appendChild(grid(view.window, view.global ? `the whole channel (${shape([view.window.length, view.window[0].length])})` :
      `the ${shape(view.pool_size)} window, rows ${view.rows.join(", ")}, columns ${view.columns.join(", ")}`, marks));
    box.append(...resultLine(view, view.pool === "max" ? "the largest value: " : `the mean of ${view.count} values: `));
  }

  function flatten(view, box) {
    const [y, x, channel] = view.source;
    box.append(facts([["position in the list", String(view.index)], ["came from", `row ${y}, column ${x}, channel ${channel}`]]),
      element("p", "op-formula", view.formula), ...resultLine(view));
  }

  function dense(view, box, labels) {
    const table = element("table", "op-table");
    table.appendChild(element("caption", "", `the ${view.top.length} largest contributions (weight × value) of ${view.inputs} inputs`));
    const head = table.createTHead().insertRow();
    for (const title of ["input", "value", "weight", "weight × value"]) head.appendChild(element("th", "", title));
    const body = table.createTBody();
    for (const entry of view.top) {
      const row = body.insertRow();
      for (const text of [String(entry.index), EMO.round(entry.value), EMO.round(entry.weight), EMO.round(entry.product)]) {
        row.insertCell().textContent = text;
      }
      row.className = entry.product > 0 ? "positive" : entry.product < 0 ? "negative" : "";
    }
    if (view.inputs > view.top.length) {
      const rest = body.insertRow();
      rest.insertCell().textContent = `the other ${view.inputs - view.top.length}`;
      rest.cells[0].colSpan = 3;
      rest.insertCell().textContent = EMO.round(view.rest);
    }
    const unit = labels ? ` (${labels[view.position.channel]})` : "";
    box.append(table, ...resultLine(view, summed(view, `unit ${view.position.channel}${unit}: sum`)));
  }

  function softmax(view, box, labels) {
    const table = element("table", "op-table");
    table.appendChild(element("caption", "", "from logits to probabilities"));
    const head = table.createTHead().insertRow();
    for (const title of ["class", "logit", "logit − largest", "e to that power", "÷ total = probability"]) {
      head.appendChild(element("th", "", title));
    }
    const body = table.createTBody();
    view.logits.forEach((logit, index) => {
      const row = body.insertRow();
      for (const text of [labels ? labels[index] : `unit ${index}`, EMO.round(logit), EMO.round(view.shifted[index]),
        EMO.round(view.exponentials[index]), EMO.round(view.probabilities[index])]) row.insertCell().textContent = text;
      if (index === view.position.channel) row.className = "chosen";
    });
    const total = body.insertRow();
    total.insertCell().textContent = "total";
    total.cells[0].colSpan = 3;
    total.insertCell().textContent = EMO.round(view.total);
    total.insertCell().textContent = "1";
    box.append(table, element("p", "hint", view.stable), element("p", "note", view.note), ...resultLine(view));
  }

  function dropout(view, box) {
    box.append(facts([["rate while training", EMO.percent(view.rate)], ["value in", EMO.round(view.input)],
      ["value out", EMO.round(view.result)]]), element("p", "note", view.note), ...resultLine(view));
  }

  function generic(view, box) {
    box.append(facts([["value in", view.input === null ? "(not the same shape)" : EMO.round(view.input)]]), ...resultLine(view));
  }

  const KINDS = { conv, separable, batchnorm, activation, pool, flatten, dense, softmax, dropout, generic };

  return {
    /* Lay out ``view`` (the API's "operation") in ``container``; ``labels`` name a class layer's units. */
    render(container, view, labels) {
      const box = element("section", `op op-${view.kind}`);
      box.appendChild(element("h3", "", `${view.layer} (${view.type}) at ${place(view)}`));
      box.appendChild(element("p", "op-summary", view.summary));
      KINDS[view.kind](view, box, labels);
      container.replaceChildren(box);
    },

    /* A channel's preferred input and its top test faces (the API's "channel"), or how to get the faces. */
    channel(container, answer) {
      const box = element("section", "op-channel-view");
      const { pattern, top_faces: top } = answer;
      box.appendChild(element("h3", "", `What channel ${answer.channel} of ${answer.layer} looks for`));
      const figure = element("figure", "pattern");
      const image = element("img", "pixelated");
      image.src = pattern.image;
      image.alt = `The input that excites ${answer.layer} channel ${answer.channel} most, found by gradient ascent ` +
        `from grey in ${pattern.steps} steps; pixel values ${EMO.round(pattern.range[0])} to ${EMO.round(pattern.range[1])}`;
      figure.append(image, element("figcaption", "", `its preferred input: mean response ${EMO.round(pattern.response)}` +
        ` (plain grey: ${EMO.round(pattern.grey_response)})`));
      box.appendChild(figure);
      box.appendChild(element("h4", "", "The nine test faces that excite it most"));
      if (top.missing) {
        box.appendChild(element("p", "warning", `No test faces: ${top.missing}.`));
      } else {
        const list = element("ol", "top-faces");
        top.faces.forEach((face, index) => {
          const item = element("li");
          const picture = element("img", "pixelated");
          picture.src = face.image;
          picture.alt = `test face ${index + 1}: ${face.class}, mean activation ${EMO.round(face.activation)}`;
          item.append(picture, element("span", "", `${face.class} · ${EMO.round(face.activation)}`));
          list.appendChild(item);
        });
        box.appendChild(list);
      }
      container.replaceChildren(box);
    },
  };
})();
