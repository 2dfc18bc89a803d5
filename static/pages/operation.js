/* The operation behind one number of a layer, laid out from what /api/explain sends (parts=operation):
   its numbers, its sentences, and ``display``, the blocks web/operation_view.py composed (every sentence,
   sum and rounded number is Python's). This file only turns the blocks into elements; the result's exact
   value is in its data-value. A channel's panel (channel) only labels the numbers and pictures the API
   sends for it. */
"use strict";

const OPERATION = (() => {
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* A table of numbers, each cell ``{text}``, a marked one with its ``class`` and ``title``. */
  function grid(block) {
    const table = element("table", "op-grid");
    table.appendChild(element("caption", "", block.caption));
    for (const row of block.rows) {
      const tr = table.insertRow();
      for (const cell of row) {
        const td = tr.insertCell();
        td.textContent = cell.text;
        if (cell.class) {
          td.className = cell.class;
          td.title = cell.title;
        }
      }
    }
    return table;
  }

  /* A convolution's planes: the first ``shown`` as window × weights = products, the rest behind a button. */
  function planes(block) {
    const box = element("div");
    const channelsBox = element("div", "op-channels");
    const drawn = (shown) => {
      for (const plane of block.planes.slice(channelsBox.children.length, shown)) {
        const figure = element("figure", "op-channel");
        const [window, weights, products] = plane.grids.map(grid);
        figure.append(window, element("span", "op-sign", "×"), weights, element("span", "op-sign", "="), products,
          element("figcaption", "", plane.caption));
        channelsBox.appendChild(figure);
      }
    };
    drawn(block.shown);
    box.appendChild(channelsBox);
    if (block.more) {
      const more = element("button", "button secondary", block.more.button);
      more.type = "button";
      more.addEventListener("click", () => { drawn(block.planes.length); more.remove(); });
      const list = element("ol", "op-sums");
      list.setAttribute("aria-label", block.more.label);
      for (const sum of block.more.sums) list.appendChild(element("li", sum.class, sum.text));
      box.append(more, element("p", "", block.more.intro), list);
    }
    return box;
  }

  function table(block) {
    const node = element("table", "op-table");
    node.appendChild(element("caption", "", block.caption));
    const head = node.createTHead().insertRow();
    for (const title of block.head) head.appendChild(element("th", "", title));
    const body = node.createTBody();
    for (const row of block.rows) {
      const tr = body.insertRow();
      for (const text of row.cells) tr.insertCell().textContent = text;
      if (row.span) tr.cells[0].colSpan = row.span;
      if (row.class) tr.className = row.class;
    }
    return node;
  }

  function facts(block) {
    const list = element("dl", "op-facts");
    for (const [name, value] of block.pairs) list.append(element("dt", "", name), element("dd", "", value));
    return list;
  }

  /* A map of numbers as grey cells on the block's scale (``low`` black, ``high`` white), the chosen one outlined. */
  function heatmap(map, low, high, chosen) {
    const rows = map.rows;
    const canvas = element("canvas", "op-map pixelated");
    canvas.width = rows[0].length;
    canvas.height = rows.length;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", map.label);
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

  function maps(block) {
    const pair = element("div", "op-pair");
    for (const map of block.maps) {
      const figure = element("figure");
      figure.append(heatmap(map, block.low, block.high, block.chosen), element("figcaption", "", map.caption));
      pair.appendChild(figure);
    }
    return pair;
  }

  /* The equation up to the result, then the result: rounded on screen, exact in data-value. */
  function result(block) {
    const line = element("p", "op-equation");
    line.append(block.before);
    const number = element("output", "op-result", block.text);
    number.dataset.value = String(block.value);
    line.appendChild(number);
    return line;
  }

  const BLOCKS = {
    heading: (block) => element("h4", "", block.text),
    text: (block) => element("p", block.style, block.text),
    grid, planes, table, facts, maps, result,
  };

  return {
    /* Lay out ``view`` (the API's "operation") in ``container``: its title, summary, blocks and check. */
    render(container, view) {
      const { display } = view;
      const box = element("section", `op op-${view.kind}`);
      box.append(element("h3", "", display.title), element("p", "op-summary", view.summary),
        ...display.blocks.map((block) => BLOCKS[block.block](block)));
      const check = element("p", "op-check", view.check);
      check.dataset.value = String(view.output);
      box.appendChild(check);
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
      box.appendChild(element("h4", "", top.missing ? "The test faces that excite it most"
        : `The ${top.faces.length} test faces that excite it most`));
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
