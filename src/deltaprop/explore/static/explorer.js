/* deltaprop explorer: the page. It asks the server (the deltaprop library) for every number and only draws them. */
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  const SVGNS = "http://www.w3.org/2000/svg";
  const CLASS_RGB = [
    [37, 99, 235], [220, 38, 38], [22, 163, 74], [217, 119, 6], [147, 51, 234],
    [8, 145, 178], [219, 39, 119], [101, 163, 13], [71, 85, 105], [180, 83, 9],
  ];

  const S = {
    sid: null,
    info: null,
    config: null, // the last model configuration built
    model: null, // the last state the server sent
    trace: null, // the step being revealed
    after: null, // the state after that step (applied once the update is shown)
    phase: -1,
    running: false, // the Run loop should go on
    looping: false, // the Run loop has not finished its last request yet
    loop: null, // the Run loop's promise
    busy: false,
  };

  // ----------------------------------------------------------------------------------------- talking to the server
  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function request(method, path, body, raw) {
    const init = { method, headers: {} };
    if (raw !== undefined) {
      init.body = raw;
      init.headers["Content-Type"] = "text/csv";
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError("cannot reach the explorer server: is 'deltaprop explore' still running?", 0);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (e) {
      payload = null;
    }
    if (!response.ok) {
      const msg = payload && payload.error ? payload.error : `the server answered ${response.status}`;
      throw new ApiError(msg, response.status);
    }
    return payload;
  }

  async function newSession() {
    const r = await request("POST", "/api/session", {});
    S.sid = r.session;
  }

  // Calls the session API; a forgotten session (404) is replaced by a new one with the same model.
  async function call(method, action, body, raw) {
    if (!S.sid) await newSession();
    const path = `/api/session/${encodeURIComponent(S.sid)}${action ? "/" + action : ""}`;
    try {
      return await request(method, path, body, raw);
    } catch (e) {
      if (e.status !== 404) throw e;
      await newSession();
      if (S.config && action !== "model") await request("POST", `/api/session/${S.sid}/model`, S.config);
      note("The server had forgotten this session (it keeps a few at a time); a new one was started.");
      return await request(method, `/api/session/${encodeURIComponent(S.sid)}${action ? "/" + action : ""}`, body, raw);
    }
  }

  // ------------------------------------------------------------------------------------------------- messages
  function showMessage(text, kind) {
    const box = $("#message");
    box.textContent = text;
    box.className = `message show ${kind}`;
    box.dataset.kind = kind;
  }
  function error(e) {
    showMessage(e && e.message ? e.message : String(e), "error");
  }
  function note(text) {
    showMessage(text, "note");
  }
  function clearMessage() {
    const box = $("#message");
    box.textContent = "";
    box.className = "message";
    box.dataset.kind = "";
  }

  async function busy(fn) {
    if (S.busy) return;
    S.busy = true;
    setButtons();
    try {
      await fn();
    } catch (e) {
      error(e);
    } finally {
      S.busy = false;
      setButtons();
    }
  }

  function setButtons() {
    const idle = !S.busy && !S.looping;
    for (const id of ["#step-next", "#step-all", "#train-n", "#reset"]) $(id).disabled = !idle || !S.model;
    $("#run").disabled = !S.model || (S.busy && !S.looping) || (S.looping && !S.running);
    $("#run").textContent = S.running ? "❚❚ Pause" : S.looping ? "pausing…" : "▶ Run";
    document.body.dataset.busy = S.busy || S.looping ? "1" : "0";
  }

  // --------------------------------------------------------------------------------------------- formatting
  function fmt(v, digits) {
    if (v === null || v === undefined) return "–";
    if (!Number.isFinite(v)) return String(v);
    const d = digits || 6;
    if (v !== 0 && Math.abs(v) < 1e-4) return v.toExponential(d - 1);
    return String(Number(v.toPrecision(d)));
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ------------------------------------------------------------------------------------------- the controls
  function currentExample() {
    return document.querySelector('input[name="example"]:checked').value;
  }

  function showForm() {
    const ex = currentExample();
    for (const form of document.querySelectorAll(".example-form")) form.hidden = form.dataset.example !== ex;
  }

  function datasetChanged() {
    const ds = $("#c-dataset").value;
    $("#upload-box").hidden = ds !== "upload";
    for (const row of document.querySelectorAll(".generated")) row.hidden = ds === "xor" || ds === "upload";
    const noise = { moons: 0.1, circles: 0.05, spirals: 0.1 }[ds];
    if (noise !== undefined) $("#c-noise").value = noise;
    if (ds === "spirals") {
      $("#c-hidden").value = "16, 16";
      $("#c-lr").value = "0.02";
    } else if (ds === "moons" || ds === "circles") {
      if ($("#c-hidden").value === "4") $("#c-hidden").value = "8";
    }
  }

  function numberOrNull(input) {
    const text = input.value.trim();
    if (text === "") return null;
    const v = Number(text);
    return Number.isFinite(v) ? v : text; // the server says what is wrong with a non-number
  }

  function readConfig() {
    const ex = currentExample();
    if (ex === "worked") {
      return { example: "worked", lr: numberOrNull($("#worked-lr")), train_biases: $("#worked-biases").checked };
    }
    if (ex === "one_weight") {
      return { example: "one_weight", W0: numberOrNull($("#ow-W0")), lr: numberOrNull($("#ow-lr")) };
    }
    const cfg = {
      example: "custom",
      dataset: $("#c-dataset").value,
      hidden: $("#c-hidden").value,
      activation: $("#c-activation").value,
      optimizer: $("#c-optimizer").value,
      lr: numberOrNull($("#c-lr")),
      seed: numberOrNull($("#c-seed")),
      standardize: $("#c-std").checked,
    };
    if ($("#c-loss").value) cfg.loss = $("#c-loss").value;
    if (cfg.dataset !== "xor" && cfg.dataset !== "upload") {
      cfg.n_samples = numberOrNull($("#c-samples"));
      cfg.noise = numberOrNull($("#c-noise"));
    }
    return cfg;
  }

  function wantsGrid() {
    const m = S.model;
    return !!(m && m.task === "classification" && m.points);
  }

  async function build(config) {
    await halt();
    await busy(async () => {
      const body = Object.assign({}, config, { grid: true, grid_size: 64 });
      const state = await call("POST", "model", body);
      S.config = config;
      clearTrace();
      clearMessage();
      applyState(state);
      if (!state.drawable) {
        note(
          `This network has ${state.n_params.toLocaleString()} parameters — too many to draw unit by unit, ` +
            "so it is summarised layer by layer (and so is each step)."
        );
      }
    });
  }

  async function upload(file) {
    const limit = S.info ? S.info.limits.max_upload_bytes : 2 * 1024 * 1024;
    $("#upload-info").textContent = "";
    if (file.size > limit) {
      error(`The file is ${file.size.toLocaleString()} bytes; the limit is ${limit.toLocaleString()} bytes (2 MB).`);
      return;
    }
    await busy(async () => {
      const params = new URLSearchParams({ name: file.name });
      const target = $("#c-target").value.trim();
      if (target) params.set("target", target);
      const data = await file.arrayBuffer();
      const r = await call("POST", `upload?${params}`, undefined, data);
      const u = r.upload;
      const cls = u.classes ? `, classes ${u.classes.join(", ")}` : "";
      $("#upload-info").textContent =
        `${u.name}: ${u.n_rows} rows, inputs ${u.feature_names.join(", ")}; target ${u.target_name} (${u.task}${cls}).`;
      clearMessage();
    });
  }

  // ---------------------------------------------------------------------------------------------- the state
  function applyState(st) {
    S.model = st;
    $("#step-count").textContent = String(st.step);
    $("#loss-value").textContent = fmt(st.loss_value, 6);
    $("#loss-value").dataset.value = st.loss_value === null ? "" : String(st.loss_value);
    const acc = $("#accuracy");
    if (st.metrics && st.metrics.accuracy !== undefined && st.metrics.accuracy !== null) {
      $("#metric-name").textContent = "accuracy";
      acc.textContent = `${(st.metrics.accuracy * 100).toFixed(1)} %`;
      acc.dataset.value = String(st.metrics.accuracy);
    } else if (st.metrics && st.metrics.r2 !== undefined) {
      $("#metric-name").textContent = "R²";
      acc.textContent = fmt(st.metrics.r2, 4);
      acc.dataset.value = String(st.metrics.r2);
    } else {
      $("#metric-name").textContent = "accuracy";
      acc.textContent = "–";
      acc.dataset.value = "";
    }
    $("#optimizer-shown").textContent = `${st.optimizer}, η = ${st.lr}`;
    const sizes = st.layer_sizes.join("-");
    const acts = st.activations.join(", ");
    $("#net-caption").textContent = `${st.dataset.name}: ${sizes} (${acts}), loss ${st.loss}, ${st.n_params} parameters`;
    if (st.diverged) error("Training diverged (the loss is no longer a finite number): lower the learning rate and press Reset.");
    drawNetwork();
    drawLoss();
    const regions = $("#regions-figure");
    regions.hidden = !(st.task === "classification" && st.points);
    if (st.grid) drawRegions(st.grid, st.points);
    fillRegionsLegend(st);
    const ow = st.one_weight;
    $("#ew-figure").hidden = !ow;
    $("#ow-table-wrap").hidden = !ow;
    if (ow) {
      drawEW(ow);
      fillOneWeightTable(ow);
    }
    setButtons();
  }

  // ---------------------------------------------------------------------------------------------- stepping
  function clearTrace() {
    S.trace = null;
    S.after = null;
    S.phase = -1;
    $("#phases").replaceChildren();
    $("#formulas tbody").replaceChildren();
    $("#step-info").textContent = "Press “Next” to run one step: forward pass, error, backward pass, update.";
  }

  async function fetchTrace() {
    const r = await call("POST", "trace", { grid: wantsGrid(), grid_size: 64 });
    S.trace = r.trace;
    S.after = r.state;
    S.phase = 0;
    const t = r.trace;
    if (t.kind === "trace") {
      const inputs = S.model.names[0].map((n) => `${n} = ${fmt(t.values[n] !== undefined ? t.values[n] : NaN, 6)}`);
      const raw = t.full ? ` (${inputs.join(", ")})` : "";
      $("#step-info").textContent =
        `Example ${t.row + 1} of ${t.n_rows}${raw}, plain gradient descent with η = ${t.lr}.`;
    } else {
      $("#step-info").textContent = `All three examples at once, gradient descent with η = ${t.lr}.`;
    }
  }

  function lastPhase() {
    return S.trace ? S.trace.phases.length - 1 : -1;
  }

  async function stepNext() {
    await busy(async () => {
      if (!S.trace || S.phase >= lastPhase()) await fetchTrace();
      else S.phase += 1;
      renderStep();
    });
  }

  async function stepAll() {
    await busy(async () => {
      if (!S.trace || S.phase >= lastPhase()) await fetchTrace();
      S.phase = lastPhase();
      renderStep();
    });
  }

  function finishStep() {
    if (S.trace && S.phase < lastPhase()) {
      S.phase = lastPhase();
      renderStep();
    }
  }

  function renderStep() {
    const t = S.trace;
    if (!t) return;
    const list = $("#phases");
    list.replaceChildren();
    t.phases.forEach((p, i) => {
      const li = el("li", { "data-phase": p.id }, p.title);
      if (i < S.phase) li.className = "done";
      if (i === S.phase) li.className = "current";
      list.appendChild(li);
    });
    const body = $("#formulas tbody");
    body.replaceChildren();
    let freshRow = null;
    t.phases.slice(0, S.phase + 1).forEach((p, i) => {
      const head = el("tr", { class: "phase-head" });
      head.appendChild(el("td", { colSpan: 4 }, p.title));
      body.appendChild(head);
      for (const item of p.items) {
        const tr = el("tr", { class: `phase-${p.kind}${i === S.phase ? " fresh" : ""}`, "data-key": item.key });
        tr.appendChild(el("td", { class: "q" }, item.label));
        tr.appendChild(el("td", { class: "f" }, item.formula ? `= ${item.formula}` : ""));
        tr.appendChild(el("td", { class: "n" }, item.numeric ? `= ${item.numeric}` : ""));
        const v = el("td", { class: "v", "data-testid": `val-${item.key}` }, item.shown || "");
        v.setAttribute("data-value", item.value === null || item.value === undefined ? "" : String(item.value));
        if (item.note) v.title = item.note;
        tr.appendChild(v);
        body.appendChild(tr);
        if (i === S.phase && !freshRow) freshRow = head;
      }
    });
    if (freshRow) {
      const wrap = body.closest(".formulas-wrap");
      wrap.scrollTop = freshRow.offsetTop - 28;
    }
    if (S.phase >= lastPhase() && S.after) {
      const after = S.after;
      S.after = null;
      applyState(after);
    } else {
      drawNetwork();
    }
  }

  // What the revealed phases say about each unit and edge, for the drawing.
  function overlay() {
    const t = S.trace;
    const o = { unitLines: {}, unitClass: {}, hotLayer: -1, updated: false, lit: null };
    if (!t || t.kind !== "trace") {
      if (t && t.kind === "one_weight") o.updated = S.phase >= lastPhase();
      return o;
    }
    const show = S.model.layer_sizes.every((n) => n <= 6) && t.full;
    if (show) for (const n of S.model.names[0]) o.unitLines[n] = [fmt(t.values[n], 6)];
    t.phases.slice(0, S.phase + 1).forEach((p, i) => {
      const current = i === S.phase;
      if (p.kind === "forward" && current) o.lit = { layer: p.layer, cls: "lit-forward" };
      if (p.kind === "error" && current) o.lit = { layer: p.layer, cls: "lit-error" };
      if (p.kind === "backward" && current) {
        o.lit = { layer: p.layer, cls: "lit-backward" };
        o.hotLayer = p.layer;
      }
      if (p.kind === "update") o.updated = true;
      if (!show) return;
      for (const item of p.items) {
        if (!item.unit) continue;
        const lines = (o.unitLines[item.unit] = o.unitLines[item.unit] || []);
        const k = item.key;
        if (k.startsWith("net_")) lines.push(`net ${fmt(item.value, 5)}`);
        else if (k.startsWith("out_")) lines.push(`out ${fmt(item.value, 5)}`);
        else if (k.startsWith("E_")) lines.push(`E ${fmt(item.value, 5)}`);
        else if (k.startsWith("delta_")) lines.push(`δ ${fmt(item.value, 5)}`);
      }
    });
    return o;
  }

  // ------------------------------------------------------------------------------------------- the network
  function weightsToDraw() {
    // before a traced step's update is shown, draw the weights the step started from
    const t = S.trace;
    const m = S.model;
    if (!m.weights.layers) return null;
    if (t && t.kind === "trace" && t.full && S.phase < lastPhase()) {
      let count = 0;
      return m.weights.layers.map((layer) => {
        const W = layer.W.map((row) => row.slice());
        const nIn = W.length;
        const nOut = W[0].length;
        for (let j = 0; j < nOut; j++) {
          for (let i = 0; i < nIn; i++) {
            count += 1;
            const v = t.values[`w${count}`];
            if (v !== undefined) W[i][j] = v;
          }
        }
        return { W, b: layer.b };
      });
    }
    return m.weights.layers;
  }

  function drawNetwork() {
    const m = S.model;
    const box = $("#net-svg");
    box.replaceChildren();
    const summary = $("#net-summary");
    if (!m) return;
    if (!m.drawable) {
      drawSummary(box, m);
      summary.hidden = false;
      fillWeightSummary(summary, m);
      return;
    }
    summary.hidden = true;
    const sizes = m.layer_sizes;
    const maxUnits = Math.max(...sizes);
    const ov = overlay();
    const showVals = sizes.every((n) => n <= 6);
    const spacing = maxUnits <= 2 ? 120 : maxUnits <= 4 ? 80 : maxUnits <= 8 ? 44 : 30;
    const r = maxUnits <= 4 ? 22 : maxUnits <= 8 ? 15 : 10;
    const W = Math.max(560, Math.min(1000, box.clientWidth || 640));
    const H = Math.max(230, 90 + maxUnits * spacing);
    box.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const L = sizes.length;
    const span = Math.min(W - 140, (L - 1) * 260);
    const xs = sizes.map((_, l) => (W - span) / 2 + (l * span) / Math.max(1, L - 1));
    const pos = sizes.map((n, l) => {
      const top = (H - 14 - (n - 1) * spacing) / 2;
      return Array.from({ length: n }, (_, j) => [xs[l], top + j * spacing]);
    });
    const layers = weightsToDraw();
    let maxAbs = 1e-12;
    for (const layer of layers) for (const row of layer.W) for (const w of row) maxAbs = Math.max(maxAbs, Math.abs(w));
    const nEdges = layers.reduce((a, layer) => a + layer.W.length * layer.W[0].length, 0);
    const labelEdges = nEdges <= 8;
    const edges = svg("g", { class: "edges" });
    const labels = svg("g", { class: "labels" });
    let count = 0;
    layers.forEach((layer, l) => {
      const nIn = layer.W.length;
      const nOut = layer.W[0].length;
      for (let j = 0; j < nOut; j++) {
        for (let i = 0; i < nIn; i++) {
          count += 1;
          const w = layer.W[i][j];
          const [x1, y1] = pos[l][i];
          const [x2, y2] = pos[l + 1][j];
          const width = 0.6 + (5.5 * Math.abs(w)) / maxAbs;
          const line = svg("line", {
            x1, y1, x2, y2,
            class: `edge${ov.hotLayer === l + 1 ? " hot" : ""}`,
            stroke: w >= 0 ? "#2b6cb0" : "#d9480f",
            "stroke-width": width.toFixed(2),
            "stroke-opacity": (0.35 + (0.6 * Math.abs(w)) / maxAbs).toFixed(2),
            "data-weight": `w${count}`,
          });
          const title = svg("title", {}, `w${count}: ${m.names[l][i]} → ${m.names[l + 1][j]} = ${fmt(w, 9)}`);
          line.appendChild(title);
          edges.appendChild(line);
          if (labelEdges) {
            const t = 0.27; // near the source, where the edges of a layer are still apart
            const len = Math.hypot(x2 - x1, y2 - y1) || 1;
            const lx = x1 + t * (x2 - x1) + (4 * (y2 - y1)) / len;
            const ly = y1 + t * (y2 - y1) - (4 * (x2 - x1)) / len;
            const angle = (Math.atan2(y2 - y1, x2 - x1) * 180) / Math.PI;
            const base = m.example === "one_weight" ? "W" : `w${count}`;
            const name = ov.updated && S.trace ? `${base}⁺` : base;
            labels.appendChild(
              svg(
                "text",
                {
                  x: lx,
                  y: ly,
                  class: `elabel${name.endsWith("⁺") ? " new" : ""}`,
                  "text-anchor": "middle",
                  transform: `rotate(${angle.toFixed(1)} ${lx.toFixed(1)} ${ly.toFixed(1)})`,
                },
                `${name} = ${fmt(w, 5)}`
              )
            );
          }
        }
      }
    });
    box.appendChild(edges);
    box.appendChild(labels);
    const units = svg("g", { class: "units" });
    sizes.forEach((n, l) => {
      for (let j = 0; j < n; j++) {
        const name = m.names[l][j];
        const [x, y] = pos[l][j];
        const g = svg("g", { class: `unit${l === 0 ? " input" : ""}`, "data-unit": name });
        if (ov.lit && ov.lit.layer === l) g.classList.add(ov.lit.cls);
        if (ov.updated && l > 0 && S.trace) g.classList.add("lit-update");
        g.appendChild(svg("circle", { cx: x, cy: y, r }));
        const nameSize = name.length <= 2 ? Math.min(13, r * 0.8) : Math.min(11, (2.1 * r) / name.length + 1);
        const label = svg("text", { x, y, class: "name", "font-size": nameSize.toFixed(1) }, maxUnits <= 8 ? name : "");
        g.appendChild(label);
        const b = l > 0 ? layers[l - 1].b[j] : null;
        const tip = l > 0 ? `${name}: bias ${fmt(b, 9)}` : `${name}: input`;
        g.appendChild(svg("title", {}, tip));
        const lines = (showVals ? ov.unitLines[name] || [] : []).slice(-2);
        const above = n > 1 && j < n / 2; // the upper units write above themselves, the lower ones below
        lines.forEach((text, k) => {
          const cls = text.startsWith("δ") ? "val delta" : text.startsWith("E ") ? "val err" : "val";
          const ty = above ? y - r - 8 - (lines.length - 1 - k) * 13 : y + r + 13 + k * 13;
          g.appendChild(svg("text", { x, y: ty, class: cls }, text));
        });
        units.appendChild(g);
      }
      const label = l === 0 ? "inputs" : l === L - 1 ? `output (${m.activations[l - 1]})` : `hidden ${l} (${m.activations[l - 1]})`;
      units.appendChild(svg("text", { x: xs[l], y: H - 6, class: "layer-label" }, label));
    });
    box.appendChild(units);
  }

  function drawSummary(box, m) {
    const sizes = m.layer_sizes;
    const W = Math.max(560, Math.min(1000, box.clientWidth || 640));
    const H = 180;
    box.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const L = sizes.length;
    const span = Math.min(W - 120, (L - 1) * 200);
    const xs = sizes.map((_, l) => (W - span) / 2 + (l * span) / Math.max(1, L - 1));
    const maxN = Math.max(...sizes);
    const ov = overlay();
    sizes.forEach((n, l) => {
      const h = 30 + (90 * n) / maxN;
      if (l > 0) {
        const stats = m.weights.summary[l - 1];
        const width = 1 + 5 * Math.min(1, stats.mean_abs / 0.5);
        box.appendChild(svg("line", { x1: xs[l - 1] + 26, y1: H / 2 - 10, x2: xs[l] - 26, y2: H / 2 - 10, stroke: "#7a8594", "stroke-width": width.toFixed(2), class: `edge${ov.hotLayer === l ? " hot" : ""}` }));
      }
      const g = svg("g", { class: "box unit" + (ov.lit && ov.lit.layer === l ? ` ${ov.lit.cls}` : "") });
      g.appendChild(svg("rect", { x: xs[l] - 26, y: H / 2 - 10 - h / 2, width: 52, height: h, rx: 6 }));
      g.appendChild(svg("text", { x: xs[l], y: H / 2 - 6 }, String(n)));
      const label = l === 0 ? "inputs" : l === L - 1 ? `out (${m.activations[l - 1]})` : `${m.activations[l - 1]}`;
      g.appendChild(svg("text", { x: xs[l], y: H - 8, class: "layer-label" }, label));
      box.appendChild(g);
    });
  }

  function fillWeightSummary(div, m) {
    const table = el("table", { "data-testid": "weight-summary" });
    const head = el("tr");
    for (const h of ["layer", "shape", "min w", "max w", "mean |w|", "‖W‖"]) head.appendChild(el("th", {}, h));
    table.appendChild(head);
    m.weights.summary.forEach((s, i) => {
      const tr = el("tr");
      for (const v of [String(i + 1), s.shape.join(" × "), fmt(s.min, 4), fmt(s.max, 4), fmt(s.mean_abs, 4), fmt(s.norm, 4)]) {
        tr.appendChild(el("td", {}, v));
      }
      table.appendChild(tr);
    });
    div.replaceChildren(el("p", {}, `${m.n_params.toLocaleString()} parameters: too many to draw one by one. The weights, layer by layer:`), table);
  }

  // --------------------------------------------------------------------------------------------- the plots
  // Round tick values (1, 2 or 5 times a power of ten) covering [lo, hi]; for a log axis, whole decades.
  function ticks(lo, hi, log) {
    if (log) {
      const out = [];
      for (let k = Math.ceil(lo); k <= Math.floor(hi); k++) out.push(k);
      return out;
    }
    const raw = (hi - lo) / 4 || 1;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  function axes(ctx, box, xr, yr, xlabel, ylabel, ylog) {
    const X = (v) => box.x0 + ((v - xr[0]) / (xr[1] - xr[0])) * (box.x1 - box.x0);
    const Y = (v) => box.y1 - ((v - yr[0]) / (yr[1] - yr[0])) * (box.y1 - box.y0);
    ctx.font = "11px DejaVu Sans, sans-serif";
    ctx.fillStyle = "#5d6775";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of ticks(yr[0], yr[1], ylog)) {
      const y = Y(v);
      ctx.strokeStyle = "#eef0f3";
      ctx.beginPath();
      ctx.moveTo(box.x0 + 1, y);
      ctx.lineTo(box.x1, y);
      ctx.stroke();
      ctx.fillText(ylog ? (v >= -3 ? String(Math.pow(10, v)) : `1e${v}`) : fmt(v, 4), box.x0 - 4, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of ticks(xr[0], xr[1], false)) ctx.fillText(fmt(v, 4), X(v), box.y1 + 4);
    ctx.strokeStyle = "#9aa3ae";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(box.x0, box.y0);
    ctx.lineTo(box.x0, box.y1);
    ctx.lineTo(box.x1, box.y1);
    ctx.stroke();
    ctx.fillText(xlabel, (box.x0 + box.x1) / 2, box.y1 + 18);
    ctx.save();
    ctx.translate(12, (box.y0 + box.y1) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(ylabel, 0, -6);
    ctx.restore();
  }

  function drawLoss() {
    const c = $("#loss-canvas");
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    const h = S.model.history;
    const pts = [];
    for (let i = 0; i < h.step.length; i++) if (h.loss[i] !== null) pts.push([h.step[i], h.loss[i]]);
    const box = { x0: 58, x1: c.width - 12, y0: 12, y1: c.height - 36 };
    c.dataset.points = String(pts.length);
    if (pts.length === 0) {
      axes(ctx, box, [0, 1], [0, 1], "step", "loss", false);
      ctx.fillStyle = "#5d6775";
      ctx.textAlign = "center";
      ctx.fillText("no steps yet: press Next, Train or Run", (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2);
      return;
    }
    const losses = pts.map((p) => p[1]);
    const lo = Math.min(...losses);
    const hi = Math.max(...losses);
    const ylog = lo > 0 && hi / lo > 50;
    const tr = (v) => (ylog ? Math.log10(v) : v);
    let yr = [ylog ? Math.floor(tr(lo)) : Math.min(0, lo), ylog ? Math.ceil(tr(hi)) : hi * 1.05 || 1];
    if (yr[1] === yr[0]) yr = [yr[0] - 1, yr[1] + 1];
    const xr = [pts[0][0] > 1 ? pts[0][0] : 0, Math.max(pts[pts.length - 1][0], 1)];
    axes(ctx, box, xr, yr, "step", ylog ? "loss (log scale)" : "loss", ylog);
    ctx.strokeStyle = "#2456a6";
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    pts.forEach(([s, v], i) => {
      const x = box.x0 + ((s - xr[0]) / (xr[1] - xr[0] || 1)) * (box.x1 - box.x0);
      const y = box.y1 - ((tr(v) - yr[0]) / (yr[1] - yr[0])) * (box.y1 - box.y0);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
    if (pts.length === 1) {
      const [s, v] = pts[0];
      const x = box.x0 + ((s - xr[0]) / (xr[1] - xr[0] || 1)) * (box.x1 - box.x0);
      const y = box.y1 - ((tr(v) - yr[0]) / (yr[1] - yr[0])) * (box.y1 - box.y0);
      ctx.fillStyle = "#2456a6";
      ctx.beginPath();
      ctx.arc(x, y, 3, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  function drawRegions(grid, points) {
    const c = $("#regions-canvas");
    const ctx = c.getContext("2d");
    const n = grid.size;
    const img = ctx.createImageData(n, n);
    const k = grid.n_classes;
    for (let r = 0; r < n; r++) {
      for (let q = 0; q < n; q++) {
        const idx = r * n + q; // grid row 0 is the lowest y: draw it at the bottom
        const cls = grid.cls[idx];
        const conf = grid.conf[idx];
        const strength = Math.max(0, Math.min(1, (conf - 1 / k) / (1 - 1 / k)));
        const a = 0.18 + 0.45 * strength;
        const rgb = CLASS_RGB[cls % CLASS_RGB.length];
        const o = ((n - 1 - r) * n + q) * 4;
        img.data[o] = Math.round(255 * (1 - a) + rgb[0] * a);
        img.data[o + 1] = Math.round(255 * (1 - a) + rgb[1] * a);
        img.data[o + 2] = Math.round(255 * (1 - a) + rgb[2] * a);
        img.data[o + 3] = 255;
      }
    }
    const off = document.createElement("canvas");
    off.width = n;
    off.height = n;
    off.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.drawImage(off, 0, 0, c.width, c.height);
    Object.assign(c.dataset, {
      xMin: grid.x_min, xMax: grid.x_max, yMin: grid.y_min, yMax: grid.y_max, size: n, classes: k,
    });
    if (!points) return;
    const sx = (x) => ((x - grid.x_min) / (grid.x_max - grid.x_min)) * c.width;
    const sy = (y) => c.height - ((y - grid.y_min) / (grid.y_max - grid.y_min)) * c.height;
    const rad = points.x.length <= 10 ? 7 : points.x.length <= 300 ? 3.5 : 2.5;
    points.x.forEach((p, i) => {
      const rgb = CLASS_RGB[(points.cls ? points.cls[i] : 0) % CLASS_RGB.length];
      ctx.beginPath();
      ctx.arc(sx(p[0]), sy(p[1]), rad, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${rgb[0] * 0.8}, ${rgb[1] * 0.8}, ${rgb[2] * 0.8})`;
      ctx.fill();
      ctx.lineWidth = 1.2;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    });
  }

  function fillRegionsLegend(st) {
    const legend = $("#regions-legend");
    legend.replaceChildren();
    if (!st.classes) return;
    st.classes.forEach((c, k) => {
      const rgb = CLASS_RGB[k % CLASS_RGB.length];
      const sw = el("span", { class: "swatch" });
      sw.style.backgroundColor = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
      legend.appendChild(sw);
      legend.appendChild(document.createTextNode(`class ${c}`));
    });
  }

  function drawEW(ow) {
    const c = $("#ew-canvas");
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    const box = { x0: 58, x1: c.width - 12, y0: 12, y1: c.height - 36 };
    const Ws = ow.curve.W;
    const Es = ow.curve.E;
    const xr = [Ws[0], Ws[Ws.length - 1]];
    const yr = [0, Math.max(...Es) * 1.05];
    const X = (w) => box.x0 + ((w - xr[0]) / (xr[1] - xr[0])) * (box.x1 - box.x0);
    const Y = (e) => box.y1 - ((e - yr[0]) / (yr[1] - yr[0])) * (box.y1 - box.y0);
    axes(ctx, box, xr, yr, "W", "E(W)", false);
    ctx.strokeStyle = "#7a8594";
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    Ws.forEach((w, i) => (i === 0 ? ctx.moveTo(X(w), Y(Es[i])) : ctx.lineTo(X(w), Y(Es[i]))));
    ctx.stroke();
    // the minimum: a dashed line at W = 2
    ctx.strokeStyle = "#2f9e44";
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(X(ow.minimum.W), box.y0);
    ctx.lineTo(X(ow.minimum.W), box.y1);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#2f9e44";
    ctx.font = "11px DejaVu Sans, sans-serif";
    ctx.textAlign = "right";
    ctx.fillText(`minimum, W = ${fmt(ow.minimum.W, 4)}`, X(ow.minimum.W) - 5, box.y0 + 8);
    // the walk
    const path = ow.path;
    ctx.strokeStyle = "#d9480f";
    ctx.fillStyle = "#d9480f";
    ctx.lineWidth = 1.2;
    path.forEach((p) => {
      if (p.W === null || p.E === null) return;
      ctx.beginPath();
      ctx.arc(X(p.W), Y(p.E), 3, 0, 2 * Math.PI);
      ctx.fill();
    });
    ctx.beginPath();
    path.forEach((p, i) => (i === 0 ? ctx.moveTo(X(p.W), Y(p.E)) : ctx.lineTo(X(p.W), Y(p.E))));
    if (path.length) ctx.lineTo(X(ow.W), Y(ow.E));
    ctx.stroke();
    // where W is now
    ctx.fillStyle = "#2456a6";
    ctx.beginPath();
    ctx.arc(X(ow.W), Y(ow.E), 6, 0, 2 * Math.PI);
    ctx.fill();
    $("#ew-now").textContent = `now W = ${fmt(ow.W, 9)}, E(W) = ${fmt(ow.E, 6)} (after ${ow.path.length} steps shown)`;
    c.dataset.w = String(ow.W);
  }

  function fillOneWeightTable(ow) {
    const body = $("#ow-table tbody");
    body.replaceChildren();
    const eta = S.model.lr;
    for (const p of ow.path.slice(-12)) {
      const tr = el("tr");
      tr.appendChild(el("td", { class: "q" }, String(p.step)));
      tr.appendChild(el("td", { class: "n" }, fmt(p.W, 9)));
      tr.appendChild(el("td", { class: "n" }, fmt(p.E, 9)));
      tr.appendChild(el("td", { class: "n" }, fmt(p.dE_dW, 9)));
      tr.appendChild(el("td", { class: "v" }, `${fmt(p.W, 6)} − ${eta}·${fmt(p.dE_dW, 6)} = ${fmt(p.W_new, 9)}`));
      body.appendChild(tr);
    }
  }

  // ---------------------------------------------------------------------------------------------- training
  function stepsWanted() {
    const v = Number($("#train-steps").value);
    return Number.isFinite(v) ? v : $("#train-steps").value;
  }

  async function trainOnce(steps) {
    const r = await call("POST", "train", { steps, grid: wantsGrid(), grid_size: 64 });
    if (S.trace) clearTrace();
    applyState(r.state);
    return r;
  }

  async function trainN() {
    await busy(async () => {
      finishStep();
      await trainOnce(stepsWanted());
    });
  }

  function stopRunning() {
    S.running = false;
    setButtons();
  }

  // Stop the Run loop and wait for its last request, so that nothing it sends lands after what follows.
  async function halt() {
    stopRunning();
    if (S.loop) await S.loop;
  }

  function run() {
    if (S.running) {
      stopRunning();
      return;
    }
    if (S.busy || S.looping || !S.model) return;
    S.loop = runLoop().finally(() => {
      S.loop = null;
    });
  }

  async function runLoop() {
    finishStep();
    S.running = true;
    S.looping = true;
    setButtons();
    clearMessage();
    const perTick = S.model.example === "one_weight" ? 1 : S.model.example === "worked" ? 25 : 10;
    const pause = S.model.example === "one_weight" ? 350 : 15;
    while (S.running) {
      try {
        const r = await trainOnce(perTick);
        if (S.model.diverged || r.steps_done === 0) break;
      } catch (e) {
        error(e);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    S.looping = false;
    stopRunning();
  }

  async function reset() {
    await halt();
    await busy(async () => {
      const state = await call("POST", "reset", {});
      clearTrace();
      clearMessage();
      applyState(state);
    });
  }

  // ------------------------------------------------------------------------------------------------- start
  async function start() {
    for (const radio of document.querySelectorAll('input[name="example"]')) {
      radio.addEventListener("change", () => {
        showForm();
        const form = document.querySelector(`#form-${currentExample()}`);
        if (currentExample() !== "custom") form.requestSubmit();
      });
    }
    for (const form of document.querySelectorAll(".example-form")) {
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        build(readConfig());
      });
    }
    $("#c-dataset").addEventListener("change", datasetChanged);
    $("#c-file").addEventListener("change", () => {
      const f = $("#c-file").files[0];
      if (f) upload(f);
    });
    $("#c-target").addEventListener("change", () => {
      const f = $("#c-file").files[0];
      if (f) upload(f);
    });
    $("#step-next").addEventListener("click", stepNext);
    $("#step-all").addEventListener("click", stepAll);
    $("#train-n").addEventListener("click", trainN);
    $("#run").addEventListener("click", run);
    $("#reset").addEventListener("click", reset);
    showForm();
    datasetChanged();
    setButtons();
    try {
      S.info = await request("GET", "/api/info");
      $("#version").textContent = `deltaprop ${S.info.version}`;
      await newSession();
    } catch (e) {
      error(e);
      return;
    }
    await build(readConfig());
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
