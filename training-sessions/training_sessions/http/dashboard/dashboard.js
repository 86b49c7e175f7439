// The trainings dashboard: plain DOM and SVG, no framework, no network beyond this service.
// Every string from the API goes in through textContent or an attribute, never innerHTML.
"use strict";

const PAGE = document.body.dataset;
const API = PAGE.apiPrefix; // "/trainings" on the host, "/api/trainings" on the backend
const ON_BACKEND = API.startsWith("/api/");
const POLL_MS = 1500;
const STREAM_RETRY_MS = 2000;
const TOKEN_KEY = "training-dashboard-token:" + PAGE.service;
const STOPPABLE = new Set(["queued", "running"]);
const RESUMABLE = new Set(["failed", "cancelled", "interrupted"]);

let selectedId = null;
let stream = null; // the selected training's TrainingStream
let waitingForToken = false;
let refreshing = false;

// ---- HTTP ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path) {
  const headers = authHeaders("application/json");
  const response = await fetch(path, { method, headers });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken();
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
    throw new ApiError(response.status, detail || "HTTP " + response.status);
  }
  return body;
}

function authHeaders(accept) {
  const headers = { Accept: accept };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

// A training's snapshot: its status and performance, read once when it is selected.
async function loadTraining(id) {
  const base = API + "/" + encodeURIComponent(id);
  const [status, performance] = await Promise.all([
    api("GET", base + "/status"),
    api("GET", base + "/performance").catch(() => null),
  ]);
  return { status, performance: performance || { history: [] } };
}

// ---- live updates: the training's Server-Sent Events ---------------------------------------
// EventSource cannot send an Authorization header, so the stream is read with fetch(): the
// same token rules as every other call. A dropped stream is reopened with Last-Event-ID.

class TrainingStream {
  constructor(id, data, onChange) {
    this.id = id;
    this.data = data;
    this.onChange = onChange;
    this.lastEventId = null;
    this.ended = false;
    this.controller = new AbortController();
    this.run();
  }

  close() {
    this.ended = true;
    this.controller.abort();
    document.getElementById("detail").dataset.stream = "closed";
  }

  async run() {
    while (!this.ended) {
      try {
        await this.readOnce();
      } catch (error) {
        if (this.ended) return;
      }
      if (!this.ended) await new Promise((resolve) => setTimeout(resolve, STREAM_RETRY_MS));
    }
  }

  async readOnce() {
    const headers = authHeaders("text/event-stream");
    if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
    const url = API + "/" + encodeURIComponent(this.id) + "/events";
    const response = await fetch(url, { headers, signal: this.controller.signal });
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken();
    }
    if (!response.ok) throw new ApiError(response.status, "HTTP " + response.status);
    // Says (to people debugging and to the browser test) that the detail follows a stream.
    document.getElementById("detail").dataset.stream = "open";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        this.handle(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  }

  handle(block) {
    let id = null;
    let kind = "message";
    let data = "";
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      if (colon === 0) continue; // a comment (keep-alive)
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") kind = value;
      else if (field === "data") data += value;
    }
    if (!data) return;
    if (id !== null) this.lastEventId = id;
    applyEvent(this.data, kind, JSON.parse(data));
    if (kind === "end") {
      this.close();
      // The final answer carries what no event does (model path, finish time).
      loadTraining(this.id).then((fresh) => this.onChange(fresh)).catch(() => {});
    }
    this.onChange(this.data);
  }
}

function applyEvent(data, kind, body) {
  const { status, performance } = data;
  if (kind === "status") {
    status.status = body.status;
    status.error = body.error;
  } else if (kind === "phase") {
    status.phase = body.phase;
  } else if (kind === "progress" || kind === "epoch") {
    status.progress = { ...status.progress, ...body };
  }
  if (kind === "epoch") {
    const row = { epoch: body.epoch };
    for (const name of ["train_loss", "val_loss", "val_accuracy", "learning_rate"]) {
      if (body[name] !== null && body[name] !== undefined) row[name] = body[name];
    }
    performance.history = performance.history.filter((r) => r.epoch !== body.epoch);
    performance.history.push(row);
    performance.history.sort((a, b) => a.epoch - b.epoch);
  } else if (kind === "result") {
    performance.test_metrics = body.test_metrics;
    performance.baseline_metrics = body.baseline_metrics;
  }
}

// ---- DOM helpers --------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function showMessage(text, isError) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = isError ? "message error" : "message";
  box.hidden = !text;
}

function fmtNumber(value, digits) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

function fmtDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function fmtBytes(bytes) {
  if (typeof bytes !== "number") return "–";
  return (bytes / 2 ** 30).toFixed(1) + " GiB";
}

function listText(values) {
  return Array.isArray(values) && values.length ? values.join(", ") : "–";
}

// ---- token --------------------------------------------------------------------------------

function askForToken() {
  if (waitingForToken) return;
  waitingForToken = true;
  const form = document.getElementById("token-form");
  form.hidden = false;
  document.getElementById("token-input").focus();
}

function setUpTokenForm() {
  const form = document.getElementById("token-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token-input");
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    form.hidden = true;
    waitingForToken = false;
    refresh();
  });
}

// ---- the list -----------------------------------------------------------------------------

function statusBadge(status) {
  return el("span", { class: "badge status-" + status, "data-role": "status" }, status);
}

function progressBar(progress) {
  const percent = Math.max(0, Math.min(100, Number(progress && progress.percent) || 0));
  const bar = el("div", { class: "bar" });
  bar.style.width = percent + "%";
  const label = progress
    ? "epoch " + progress.epoch + "/" + progress.total_epochs + " · " + percent.toFixed(0) + "%"
    : "";
  return el("div", { class: "progress", title: label }, el("div", { class: "track" }, bar),
    el("span", { class: "progress-label" }, label));
}

function whereItRuns(item) {
  if (!ON_BACKEND) return el("span", {}, "this host");
  if (item.routed_to === "local") {
    return el("span", { class: "fallback" }, "local fallback",
      item.fallback_reason ? el("small", {}, " (" + item.fallback_reason + ")") : null);
  }
  const unreachable = item.host_reachable === false ? el("small", {}, " (unreachable)") : null;
  return el("span", {}, "host service", unreachable);
}

function actionButton(item) {
  if (STOPPABLE.has(item.status)) {
    return el("button", { class: "stop", type: "button",
      onclick: (event) => act(event, item.training_id, "stop") }, "Stop");
  }
  if (RESUMABLE.has(item.status)) {
    return el("button", { class: "resume", type: "button",
      onclick: (event) => act(event, item.training_id, "resume") }, "Resume");
  }
  return null;
}

function strategyName(item) {
  if (typeof item.strategy === "string") return item.strategy;
  return item.strategy === null ? "(default)" : "–";
}

function trainingRow(item) {
  const row = el("tr", { "data-training-id": item.training_id,
    class: item.training_id === selectedId ? "selected" : null },
    el("td", {}, el("code", {}, item.training_id.slice(0, 12))),
    el("td", {}, statusBadge(item.status)),
    el("td", {}, strategyName(item)),
    el("td", {}, listText(item.symbols), el("small", {}, " " + listText(item.timeframes))),
    el("td", {}, item.device || "–"),
    el("td", {}, progressBar(item.progress)),
    el("td", {}, STOPPABLE.has(item.status) ? fmtDuration(item.progress.eta_seconds) : "–"),
    el("td", {}, whereItRuns(item)),
    el("td", {}, actionButton(item)));
  row.addEventListener("click", () => select(item.training_id));
  return row;
}

// Rows and cells are replaced only when they change, so a button is never swapped under a click.
function updateRow(row, fresh) {
  [...fresh.cells].forEach((cell, i) => {
    const old = row.cells[i];
    if (old.outerHTML !== cell.outerHTML) old.replaceWith(cell);
  });
  return row;
}

function renderList(body) {
  const items = body.items || [];
  const tbody = document.querySelector("#trainings tbody");
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.trainingId, row]));
  const rows = items.map((item) => {
    const row = existing.get(item.training_id);
    return row ? updateRow(row, trainingRow(item)) : trainingRow(item);
  });
  rows.forEach((row, i) => {
    if (tbody.rows[i] !== row) tbody.insertBefore(row, tbody.rows[i] || null);
  });
  while (tbody.rows.length > rows.length) tbody.rows[rows.length].remove();
  document.getElementById("training-count").textContent = "(" + body.total + ")";
  document.getElementById("empty-list").hidden = items.length > 0;
  if (selectedId === null && items.length) select(items[0].training_id);
}

async function act(event, id, action) {
  event.stopPropagation();
  event.target.disabled = true;
  try {
    await api("POST", API + "/" + encodeURIComponent(id) + "/" + action);
    showMessage(action === "stop" ? "Stop requested for " + id : "Resumed " + id, false);
  } catch (error) {
    const verb = action === "stop" ? "stop" : "resume";
    showMessage("Could not " + verb + " " + id + ": " + error.message, true);
  }
  if (stream !== null && stream.id === id && stream.ended) stream = null; // resumed: follow again
  refresh();
}

// ---- the selected training ---------------------------------------------------------------

const SERIES = [
  { key: "train_loss", label: "train loss", color: "#2563eb" },
  { key: "val_loss", label: "validation loss", color: "#ea580c" },
];
const ACCURACY = [{ key: "val_accuracy", label: "validation accuracy", color: "#16a34a" }];

function niceTicks(min, max, count) {
  if (min === max) { min -= 0.5; max += 0.5; }
  const step = (max - min) / (count - 1);
  return Array.from({ length: count }, (_, i) => min + i * step);
}

function lineChart(history, series, fixedRange) {
  const W = 460, H = 220, L = 48, R = 12, T = 12, B = 36;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
  const points = series.flatMap((s) => history
    .filter((h) => typeof h[s.key] === "number").map((h) => [h.epoch, h[s.key]]));
  if (!points.length) {
    chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" },
      "no finished epoch yet"));
    return chart;
  }
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const xMin = Math.min(1, ...xs), xMax = Math.max(xMin + 1, ...xs);
  let [yMin, yMax] = fixedRange || [Math.min(...ys), Math.max(...ys)];
  if (!fixedRange) { const pad = (yMax - yMin) * 0.1 || 0.05; yMin -= pad; yMax += pad; }
  const x = (v) => L + ((v - xMin) / (xMax - xMin)) * (W - L - R);
  const y = (v) => T + (1 - (v - yMin) / (yMax - yMin)) * (H - T - B);

  const axes = svg("g", { class: "axes" });
  axes.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B }));
  axes.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B }));
  for (const v of niceTicks(yMin, yMax, 5)) {
    axes.append(svg("line", { x1: L, y1: y(v), x2: W - R, y2: y(v), class: "grid" }));
    axes.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(2)));
  }
  const epochStep = Math.max(1, Math.ceil((xMax - xMin) / 8));
  for (let e = xMin; e <= xMax; e += epochStep) {
    axes.append(svg("text", { x: x(e), y: H - B + 16, "text-anchor": "middle" }, e));
  }
  axes.append(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
  chart.append(axes);

  series.forEach((s, i) => {
    const data = history.filter((h) => typeof h[s.key] === "number");
    const group = svg("g", { class: "series", "data-series": s.key });
    if (data.length) {
      const d = data.map((h, j) => (j ? "L" : "M") + x(h.epoch) + "," + y(h[s.key])).join(" ");
      group.append(svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 2 }));
      for (const h of data) {
        const dot = svg("circle", { cx: x(h.epoch), cy: y(h[s.key]), r: 3, fill: s.color,
          class: "point" });
        dot.append(svg("title", {}, s.label + ", epoch " + h.epoch + ": " + h[s.key].toFixed(4)));
        group.append(dot);
      }
    }
    const lx = W - R - 150, ly = T + 6 + i * 16;
    group.append(svg("rect", { x: lx, y: ly - 8, width: 12, height: 4, fill: s.color }));
    group.append(svg("text", { x: lx + 18, y: ly - 2, class: "legend" }, s.label));
    chart.append(group);
  });
  return chart;
}

// Errors: a model below the baseline is the better one.
const LOWER_IS_BETTER = new Set(["mae", "rmse"]);

function metricsTable(test, baseline, evaluation) {
  const keys = Object.keys(test).filter((k) => typeof test[k] === "number");
  const rows = keys.map((k) => {
    const base = baseline ? baseline[k] : undefined;
    const diff = typeof base === "number" ? test[k] - base : null;
    const gain = diff === null ? null : LOWER_IS_BETTER.has(k) ? -diff : diff;
    return el("tr", {}, el("th", {}, k), el("td", {}, fmtNumber(test[k], 3)),
      el("td", {}, fmtNumber(base, 3)),
      el("td", { class: gain === null ? null : gain > 0 ? "better" : "worse" },
        diff === null ? "–" : (diff > 0 ? "+" : "") + diff.toFixed(3)));
  });
  const regression = typeof test.r2 === "number";
  const table = el("table", { class: "metrics" },
    el("thead", {}, el("tr", {}, el("th", {}, "metric"), el("th", {}, "model"),
      el("th", {}, regression ? "mean baseline" : "majority baseline"),
      el("th", {}, "difference"))),
    el("tbody", {}, ...rows));
  // The verdict is the evaluation's (one rule: better on both metrics, docs/evaluation.md).
  const sentence = evaluation && evaluation.verdict ? evaluation.verdict.verdict : null;
  const verdict = sentence === null ? null
    : el("p", { class: sentence.startsWith("beats") ? "verdict better" : "verdict worse" },
      "Verdict: " + sentence + ".");
  return el("div", {}, table, verdict);
}

function renderDetail(data) {
  const { status, performance } = data;
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-id").textContent = status.training_id;
  document.getElementById("detail-status").replaceChildren(statusBadge(status.status));
  const error = document.getElementById("detail-error");
  error.textContent = status.error || "";
  error.hidden = !status.error;
  const history = (performance && performance.history) || [];
  document.getElementById("loss-chart").replaceChildren(lineChart(history, SERIES, null));
  document.getElementById("accuracy-chart").replaceChildren(lineChart(history, ACCURACY, [0, 1]));
  const box = document.getElementById("test-metrics");
  if (performance && performance.test_metrics) {
    box.className = "";
    box.replaceChildren(metricsTable(performance.test_metrics, performance.baseline_metrics,
      performance.evaluation));
  } else {
    box.className = "muted";
    box.textContent = "available when the training completes";
  }
}

function select(id) {
  if (stream !== null && stream.id !== id) {
    stream.close();
    stream = null;
  }
  selectedId = id;
  for (const row of document.querySelectorAll("#trainings tbody tr")) {
    row.classList.toggle("selected", row.dataset.trainingId === id);
  }
  refreshDetail();
}

// The selected training follows its event stream; the list keeps polling.
async function refreshDetail() {
  if (selectedId === null || (stream !== null && stream.id === selectedId)) return;
  const id = selectedId;
  const data = await loadTraining(id);
  if (id !== selectedId || (stream !== null && stream.id === id)) return;
  renderDetail(data);
  stream = new TrainingStream(id, data, (fresh) => {
    if (stream !== null && stream.id === selectedId) renderDetail(fresh);
  });
}

// ---- resources: GPU on the host, breaker and host on the backend ---------------------------

function definitionList(pairs) {
  return el("dl", {}, ...pairs.flatMap(([term, value]) => [el("dt", {}, term),
    el("dd", {}, value === null || value === undefined || value === "" ? "–" : value)]));
}

function renderGpu(body) {
  document.getElementById("infrastructure-title").textContent = "GPU";
  const box = document.getElementById("infrastructure-body");
  box.className = "";
  if (!body.available) {
    box.replaceChildren(el("p", { class: "muted", "data-role": "gpu" },
      "No GPU on this host: trainings run on the CPU."));
    return;
  }
  box.replaceChildren(...body.devices.map((d) => {
    // Device-wide use (NVML) where known; on MPS what this host's sessions hold.
    const used = d.used_memory_bytes ?? d.reserved_memory_bytes ?? d.allocated_memory_bytes;
    const share = d.total_memory_bytes && used != null ? (100 * used) / d.total_memory_bytes : 0;
    const sessions = (d.sessions || []).map((s) => s.training_id.slice(0, 8) + " " +
      fmtBytes(s.allocated_memory_bytes)).join(", ");
    return el("div", { class: "gpu", "data-role": "gpu" },
      el("strong", {}, d.name + " (" + d.device + ")"),
      progressBar({ percent: share, epoch: 0, total_epochs: 0 }),
      definitionList([
        ["memory", fmtBytes(used) + " of " + fmtBytes(d.total_memory_bytes)],
        ["utilisation", d.utilization_percent != null ? d.utilization_percent + " %" : "–"],
        ["temperature", d.temperature_celsius != null ? d.temperature_celsius + " °C" : "–"],
        ["sessions", sessions],
      ]));
  }));
}

function renderHostStatus(body) {
  document.getElementById("infrastructure-title").textContent = "Training host";
  const box = document.getElementById("infrastructure-body");
  box.className = "";
  if (!body.enabled) {
    box.replaceChildren(el("p", { "data-role": "host" },
      "The host service is disabled: every training runs locally on CPU."));
    return;
  }
  const breaker = body.breaker || {};
  const health = body.last_health;
  const reachable = health ? (health.ok ? "reachable" : "unreachable") : "not checked yet";
  box.replaceChildren(el("div", { "data-role": "host" }, definitionList([
    ["host", body.url],
    ["reachability", el("span", { class: health && health.ok ? "better" : "worse",
      "data-role": "reachability" }, reachable)],
    ["circuit breaker", el("span", { class: "badge breaker-" + breaker.state,
      "data-role": "breaker" }, breaker.state)],
    ["failures", breaker.failure_count + " of " + breaker.failure_threshold],
    ["next probe", breaker.next_probe_at],
    ["last error", breaker.last_error],
    ["last health check", health ? health.detail : null],
  ])));
}

async function refreshResources() {
  if (ON_BACKEND) renderHostStatus(await api("GET", "/api/training-host/status"));
  else renderGpu(await api("GET", "/gpu/status"));
}

// ---- the loop -----------------------------------------------------------------------------

async function refresh() {
  if (waitingForToken || refreshing) return;
  refreshing = true;
  const connection = document.getElementById("connection");
  try {
    renderList(await api("GET", API + "?limit=50"));
    await Promise.all([refreshDetail(), refreshResources()]);
    connection.textContent = "updated " + new Date().toLocaleTimeString();
    connection.className = "connection ok";
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      connection.textContent = "waiting for the API token";
    } else {
      connection.textContent = "cannot reach the service: " + error.message;
    }
    connection.className = "connection failing";
  } finally {
    refreshing = false;
  }
}

setUpTokenForm();
refresh();
setInterval(refresh, POLL_MS);
