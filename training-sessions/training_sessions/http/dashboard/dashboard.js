// The trainings dashboard: plain DOM and SVG, no framework, no network beyond this service.
// Every string from the API goes in through textContent or an attribute, never innerHTML.
"use strict";

const PAGE = document.body.dataset;
const API = PAGE.apiPrefix; // "/trainings" on the host, "/api/trainings" on the backend
const ON_BACKEND = API.startsWith("/api/");
const API_ROOT = API.slice(0, API.length - "/trainings".length); // "" or "/api"
const MODELS = API_ROOT + "/models";
const STRATEGIES = API_ROOT + "/strategies";
const POLL_MS = 1500;
const MODELS_POLL_MS = 5000;
const STREAM_RETRY_MS = 2000;
const MESSAGE_MS = 8000;
const ERROR_MESSAGE_MS = 15000;
const MAX_MESSAGES = 4;
const TOKEN_KEY = "training-dashboard-token:" + PAGE.service;
const ACTIVE = new Set(["queued", "running"]);
const RESUMABLE = new Set(["failed", "cancelled", "interrupted"]);
const DELETABLE = new Set(["completed", "failed", "cancelled", "interrupted"]);
const UNREACHABLE = "host_unreachable";
// The ETA averages the last few measured epochs: recent speed, smoothed.
const ETA_EPOCHS = 5;

let selectedId = null;
let stream = null; // the selected training's TrainingStream: the one source of its story
let listItems = new Map(); // training id -> the list's latest item
let waitingForToken = false;
let refreshing = false;
let modelsReadAt = 0;
let strategiesLoaded = false;
const compareIds = new Set();

// ---- HTTP ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The message the API gives (ErrorBody's detail), else the HTTP status.
function errorText(response, body) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => (d && d.msg ? d.msg : JSON.stringify(d))).join("; ");
  }
  return response.statusText || "HTTP " + response.status;
}

async function api(method, path, payload) {
  const headers = authHeaders("application/json");
  const init = { method, headers };
  if (payload !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  const response = await fetch(path, init);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  checkToken(response);
  if (!response.ok) throw new ApiError(response.status, errorText(response, body));
  return body;
}

function checkToken(response) {
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken();
  }
}

function authHeaders(accept) {
  const headers = { Accept: accept };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

function trainingPath(id, rest) {
  return API + "/" + encodeURIComponent(id) + (rest ? "/" + rest : "");
}

// A training's snapshot: its status and performance.
async function loadTraining(id) {
  const [status, performance] = await Promise.all([
    api("GET", trainingPath(id, "status")),
    api("GET", trainingPath(id, "performance")).catch(() => null),
  ]);
  return { status, performance: performance || { history: [] }, loadedAt: Date.now() };
}

// ---- live updates: the selected training's Server-Sent Events ------------------------------
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
    const response = await fetch(trainingPath(this.id, "events"),
      { headers, signal: this.controller.signal });
    checkToken(response);
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
      // The final answer carries what no event does (model, stopped early, finish time).
      loadTraining(this.id).then((fresh) => {
        this.data = fresh;
        this.onChange();
      }).catch(() => {});
    }
    this.onChange();
  }
}

const HISTORY_KEYS = ["train_loss", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"];

function applyEvent(data, kind, body) {
  const { status, performance } = data;
  if (kind === "status") {
    status.status = body.status;
    status.error = body.error;
  } else if (kind === "phase") {
    status.phase = body.phase;
  } else if (kind === "progress" || kind === "epoch") {
    // An epoch is finished for the page when its epoch event (its chart point) has come,
    // not when its last batch has: validation runs in between.
    status.progress = { ...status.progress, ...body, epoch_complete: kind === "epoch" };
  }
  if (kind === "epoch") {
    const row = { epoch: body.epoch };
    for (const name of HISTORY_KEYS) {
      if (body[name] !== null && body[name] !== undefined) row[name] = body[name];
    }
    performance.history = performance.history.filter((r) => r.epoch !== body.epoch);
    performance.history.push(row);
    performance.history.sort((a, b) => a.epoch - b.epoch);
    data.lastEpochAt = Date.now();
  } else if (kind === "result") {
    performance.test_metrics = body.test_metrics;
    performance.baseline_metrics = body.baseline_metrics;
  }
}

// ---- one story: what the list, the row, the detail and the ETA all read --------------------

// The training as the page tells it. The followed training's status, progress and history come
// from its event stream (the chart's source), so row, detail, chart and ETA agree; the list's
// answer wins only where the stream cannot know: the host cannot be asked.
function viewOf(id) {
  const item = listItems.get(id);
  const followed = stream !== null && stream.id === id ? stream.data : null;
  if (followed === null || (item && item.status === UNREACHABLE)) {
    return { ...(followed ? followed.status : {}), ...item, history: null, lastEpochAt: null };
  }
  const status = followed.status;
  return {
    ...item,
    ...status,
    // The list knows the route (backend) and the tags as lately as the stream knows the rest.
    routed_to: item ? item.routed_to : status.routed_to,
    tags: item && item.tags ? item.tags : status.tags,
    history: followed.performance.history,
    lastEpochAt: followed.lastEpochAt || followed.loadedAt,
  };
}

// The best epoch as the chart shows it: the lowest validation loss (the first of equals).
function bestEpoch(view) {
  if (!view.history) return view.best_epoch ?? null;
  let best = null;
  for (const row of view.history) {
    if (typeof row.val_loss === "number" && (best === null || row.val_loss < best.val_loss)) {
      best = row;
    }
  }
  return best ? best.epoch : view.best_epoch ?? null;
}

// Seconds left, from the measured epoch times: the epochs left at the mean of the last few
// measured, less what the epoch in progress has already run (never below the epochs after it).
// null (shown "—") while nothing trains: queued, starting, loading data (a worker's start can
// take far longer than an epoch), evaluating, saving; and before an epoch was measured.
function etaSeconds(view) {
  if (view.status !== "running" || !view.progress || view.phase !== "training") return null;
  const left = view.progress.total_epochs - epochsDone(view.progress);
  if (left < 1) return null;
  if (view.history) {
    const times = view.history.map((r) => r.epoch_seconds).filter((s) => typeof s === "number");
    if (!times.length) return null;
    const recent = times.slice(-ETA_EPOCHS);
    const perEpoch = recent.reduce((a, b) => a + b, 0) / recent.length;
    const inProgress = view.lastEpochAt ? (Date.now() - view.lastEpochAt) / 1000 : 0;
    return perEpoch * (left - 1) + Math.max(0, perEpoch - inProgress);
  }
  // A training the page does not follow: the engine's estimate from its epochs done so far.
  if (epochsDone(view.progress) < 1) return null;
  const eta = view.progress.eta_seconds;
  return typeof eta === "number" && Number.isFinite(eta) ? eta : null;
}

// ---- DOM helpers --------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value === true ? "" : String(value));
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

// Messages go to the status area under the header (never over the page), each dismissable and
// gone after a few seconds.
function showMessage(text, isError) {
  const box = document.getElementById("messages");
  const item = el("div", { class: isError ? "message error" : "message", "data-role": "message" },
    el("span", {}, text));
  const dismiss = el("button", { type: "button", class: "dismiss", "aria-label": "dismiss",
    onclick: () => item.remove() }, "×");
  item.append(dismiss);
  box.append(item);
  while (box.children.length > MAX_MESSAGES) box.firstElementChild.remove();
  setTimeout(() => item.remove(), isError ? ERROR_MESSAGE_MS : MESSAGE_MS);
}

const DASH = "—";

function fmtNumber(value, digits) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : DASH;
}

function fmtDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return DASH;
  const s = Math.round(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function fmtBytes(bytes) {
  if (typeof bytes !== "number") return DASH;
  return (bytes / 2 ** 30).toFixed(1) + " GiB";
}

function fmtTime(stamp) {
  if (!stamp) return DASH;
  const date = new Date(stamp);
  return Number.isNaN(date.getTime()) ? String(stamp) : date.toLocaleString();
}

function listText(values) {
  return Array.isArray(values) && values.length ? values.join(", ") : DASH;
}

function splitList(text) {
  return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
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

// ---- the start form -----------------------------------------------------------------------

async function loadStrategies() {
  const select = document.getElementById("start-strategy");
  strategiesLoaded = true;
  try {
    const body = await api("GET", STRATEGIES);
    select.replaceChildren(...body.strategies.map((name) => el("option",
      { value: name, selected: name === body.default_strategy }, name)));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      strategiesLoaded = false;
      throw error;
    }
    // Without the list a start still trains the service's default strategy.
    select.replaceChildren(el("option", { value: "" }, "the service's default"));
  }
}

function setUpStartForm() {
  const form = document.getElementById("start-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("start-error");
    error.hidden = true;
    const payload = {
      symbols: splitList(document.getElementById("start-symbols").value),
      timeframes: splitList(document.getElementById("start-timeframes").value),
      config: { epochs: Number(document.getElementById("start-epochs").value) },
    };
    // Unticked: every epoch asked for runs; ticked: the strategy's own early-stopping rule.
    if (!document.getElementById("start-early-stopping").checked) {
      payload.config.early_stopping = { enabled: false };
    }
    const strategy = document.getElementById("start-strategy").value;
    if (strategy) payload.strategy = strategy;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const started = await api("POST", API + "/start", payload);
      showMessage("Started " + started.training_id, false);
      select(started.training_id);
      refresh();
    } catch (failure) {
      // The API's own words: they name the field or value to fix.
      error.textContent = failure.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}

// ---- the list -----------------------------------------------------------------------------

function statusBadge(status) {
  return el("span", { class: "badge status-" + status, "data-role": "status" },
    String(status).replace(/_/g, " "));
}

// Epochs finished, as the chart counts them: a batch event names the epoch still in progress.
function epochsDone(progress) {
  if (!progress) return 0;
  const lastBatch = progress.total_batches > 0 && progress.batch >= progress.total_batches;
  // From the event stream: only an epoch event finishes an epoch. From a status answer
  // (no stream): its last batch does.
  const whole = progress.epoch_complete === undefined ? lastBatch : progress.epoch_complete;
  return whole ? progress.epoch : Math.max(0, progress.epoch - 1);
}

function progressText(view) {
  const p = view.progress;
  if (!p || !p.total_epochs) return "";
  const epochs = epochsDone(p) + "/" + p.total_epochs + " epochs";
  if (view.stopped_early) return epochs + " · stopped early";
  const percent = epochs + " · " + Math.min(100, Number(p.percent) || 0).toFixed(0) + "%";
  // What an active run does when it is not training (starting a worker, loading data, ...).
  const doing = view.status === "running" && view.phase && view.phase !== "training";
  return doing ? percent + " · " + view.phase.replace(/_/g, " ") : percent;
}

function progressBar(percent, label) {
  const share = Math.max(0, Math.min(100, Number(percent) || 0));
  const bar = el("div", { class: "bar" });
  bar.style.width = share + "%";
  return el("div", { class: "progress", title: label }, el("div", { class: "track" }, bar),
    el("span", { class: "progress-label", "data-role": "progress" }, label));
}

function whereItRuns(item) {
  if (!ON_BACKEND) return el("span", {}, "this host");
  if (item.routed_to === "local") {
    return el("span", { class: "fallback" }, "local fallback",
      item.fallback_reason ? el("small", {}, " (" + item.fallback_reason + ")") : null);
  }
  const unreachable = item.host_reachable === false ? el("small", {}, " (unreachable)") : null;
  const elsewhere = item.origin === "host" ? el("small", {}, " (started on the host)") : null;
  return el("span", {}, "host service", unreachable, elsewhere);
}

function actionButtons(view) {
  const id = view.training_id;
  if (view.status === UNREACHABLE) {
    // Nothing can be stopped now: a stop waits here until the host answers again.
    if (view.stop_pending) return el("span", { class: "muted", "data-role": "stop-queued" },
      "stop queued");
    return el("button", { class: "queue-stop", type: "button",
      title: "the host cannot be asked: the stop is sent when it answers again",
      onclick: (event) => act(event, id, "stop") }, "Queue stop");
  }
  if (ACTIVE.has(view.status)) {
    return el("button", { class: "stop", type: "button",
      onclick: (event) => act(event, id, "stop") }, "Stop");
  }
  const buttons = el("span", { class: "actions" });
  if (RESUMABLE.has(view.status)) {
    buttons.append(el("button", { class: "resume", type: "button",
      onclick: (event) => act(event, id, "resume") }, "Resume"));
  }
  if (DELETABLE.has(view.status)) {
    buttons.append(el("button", { class: "delete-training", type: "button",
      title: "delete this training's records and files (its model stays)",
      onclick: (event) => deleteTraining(event, id) }, "Delete"));
  }
  return buttons;
}

function strategyName(view) {
  return typeof view.strategy === "string" ? view.strategy : DASH;
}

function statusCell(view) {
  const cell = el("td", {}, statusBadge(view.status));
  if (view.status === UNREACHABLE) {
    cell.append(el("small", { class: "unreachable", "data-role": "last-known" },
      " last known: " + (view.last_known_status || "unknown") + ", since " +
      fmtTime(view.unreachable_since)));
  }
  return cell;
}

function compareBox(id) {
  const box = el("input", { type: "checkbox", class: "compare", "aria-label": "compare",
    checked: compareIds.has(id) });
  box.addEventListener("click", (event) => event.stopPropagation());
  box.addEventListener("change", () => {
    if (box.checked) compareIds.add(id);
    else compareIds.delete(id);
    document.getElementById("compare-button").disabled = compareIds.size < 2;
  });
  return box;
}

function trainingRow(view) {
  const id = view.training_id;
  const row = el("tr", { "data-training-id": id, class: id === selectedId ? "selected" : null },
    el("td", {}, compareBox(id)),
    el("td", {}, el("code", {}, id.slice(0, 12))),
    statusCell(view),
    el("td", { "data-role": "strategy" }, strategyName(view)),
    el("td", {}, listText(view.symbols), el("small", {}, " " + listText(view.timeframes))),
    el("td", { "data-role": "tags" }, listText(view.tags)),
    el("td", {}, view.device || DASH),
    el("td", {}, progressBar(view.progress && view.progress.percent, progressText(view))),
    el("td", { "data-role": "eta" }, fmtDuration(etaSeconds(view))),
    el("td", {}, whereItRuns(view)),
    el("td", {}, actionButtons(view)));
  row.addEventListener("click", () => select(id));
  return row;
}

// Rows and cells are replaced only when they change, so a button is never swapped under a click.
function updateRow(row, fresh) {
  [...fresh.cells].forEach((cell, i) => {
    const old = row.cells[i];
    if (old.outerHTML !== cell.outerHTML) old.replaceWith(cell);
  });
  row.className = fresh.className;
  return row;
}

function renderList(body) {
  const items = body.items || [];
  listItems = new Map(items.map((item) => [item.training_id, item]));
  const tbody = document.querySelector("#trainings tbody");
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.trainingId, row]));
  const rows = items.map((item) => {
    const fresh = trainingRow(viewOf(item.training_id));
    const row = existing.get(item.training_id);
    return row ? updateRow(row, fresh) : fresh;
  });
  rows.forEach((row, i) => {
    if (tbody.rows[i] !== row) tbody.insertBefore(row, tbody.rows[i] || null);
  });
  while (tbody.rows.length > rows.length) tbody.rows[rows.length].remove();
  document.getElementById("training-count").textContent = "(" + body.total + ")";
  document.getElementById("empty-list").hidden = items.length > 0;
  // A followed training that was resumed (here, by another client or by its host) is followed
  // again from a fresh snapshot.
  const item = stream !== null ? listItems.get(stream.id) : undefined;
  if (stream !== null && stream.ended && item && ACTIVE.has(item.status)) stream = null;
  // A snapshot taken while the host could not be asked is retaken once it answers again.
  if (stream !== null && item && stream.data.status.status === UNREACHABLE &&
      item.status !== UNREACHABLE) {
    stream.close();
    stream = null;
  }
  if (selectedId === null && items.length) select(items[0].training_id);
}

function rerenderRow(id) {
  const row = document.querySelector(`#trainings tbody tr[data-training-id="${CSS.escape(id)}"]`);
  if (row && listItems.has(id)) updateRow(row, trainingRow(viewOf(id)));
}

async function act(event, id, action) {
  event.stopPropagation();
  event.target.disabled = true;
  try {
    const body = await api("POST", trainingPath(id, action));
    if (action === "resume") showMessage("Resumed " + id, false);
    else if (body && body.stop_pending) showMessage("Stop queued for " + id +
      ": sent when the host answers again", false);
    else showMessage("Stop requested for " + id, false);
  } catch (error) {
    showMessage("Could not " + action + " " + id + ": " + error.message, true);
  }
  if (stream !== null && stream.id === id && stream.ended) stream = null; // resumed: follow again
  refresh();
}

async function deleteTraining(event, id) {
  event.stopPropagation();
  if (!window.confirm("Delete training " + id + "? Its records, checkpoint and log are " +
    "removed; its model stays.")) return;
  try {
    const body = await api("DELETE", trainingPath(id));
    showMessage("Deleted training " + id + " (" + body.files_removed.length + " files)", false);
    if (selectedId === id) {
      if (stream !== null) stream.close();
      stream = null;
      selectedId = null;
      document.getElementById("detail").hidden = true;
    }
  } catch (error) {
    showMessage("Could not delete " + id + ": " + error.message, true);
  }
  refresh();
}

// ---- charts -------------------------------------------------------------------------------

const SERIES = [
  { key: "train_loss", label: "train loss", color: "#2563eb" },
  { key: "val_loss", label: "validation loss", color: "#ea580c" },
];
const ACCURACY = [{ key: "val_accuracy", label: "validation accuracy", color: "#16a34a" }];
const RUN_COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#db2777", "#0891b2"];

function niceTicks(min, max, count) {
  if (min === max) { min -= 0.5; max += 0.5; }
  const step = (max - min) / (count - 1);
  return Array.from({ length: count }, (_, i) => min + i * step);
}

// Lines of (epoch, value) points: [{ name, label, color, points: [[epoch, value], ...] }].
function lineChart(lines, fixedRange) {
  const W = 460, H = 220, L = 48, R = 12, T = 12, B = 36;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
  const points = lines.flatMap((line) => line.points);
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

  lines.forEach((line, i) => {
    const group = svg("g", { class: "series", "data-series": line.name });
    if (line.points.length) {
      const d = line.points.map((p, j) => (j ? "L" : "M") + x(p[0]) + "," + y(p[1])).join(" ");
      group.append(svg("path", { d, fill: "none", stroke: line.color, "stroke-width": 2 }));
      for (const [epoch, value] of line.points) {
        const dot = svg("circle", { cx: x(epoch), cy: y(value), r: 3, fill: line.color,
          class: "point" });
        dot.append(svg("title", {}, line.label + ", epoch " + epoch + ": " + value.toFixed(4)));
        group.append(dot);
      }
    }
    const lx = W - R - 150, ly = T + 6 + i * 16;
    group.append(svg("rect", { x: lx, y: ly - 8, width: 12, height: 4, fill: line.color }));
    group.append(svg("text", { x: lx + 18, y: ly - 2, class: "legend" }, line.label));
    chart.append(group);
  });
  return chart;
}

function pointsOf(history, key) {
  return history.filter((h) => typeof h[key] === "number").map((h) => [h.epoch, h[key]]);
}

function seriesLines(history, series) {
  return series.map((s) => ({ name: s.key, label: s.label, color: s.color,
    points: pointsOf(history, s.key) }));
}

// ---- test metrics -------------------------------------------------------------------------

// Errors: a model below the baseline is the better one.
const LOWER_IS_BETTER = new Set(["mae", "rmse"]);

function verdictOf(evaluation) {
  return evaluation && evaluation.verdict ? evaluation.verdict.verdict : null;
}

function verdictClass(sentence) {
  return sentence.startsWith("beats") ? "verdict better" : "verdict worse";
}

function metricsTable(test, baseline, evaluation) {
  const keys = Object.keys(test).filter((k) => typeof test[k] === "number");
  const rows = keys.map((k) => {
    const base = baseline ? baseline[k] : undefined;
    const diff = typeof base === "number" ? test[k] - base : null;
    const gain = diff === null ? null : LOWER_IS_BETTER.has(k) ? -diff : diff;
    return el("tr", {}, el("th", {}, k), el("td", {}, fmtNumber(test[k], 3)),
      el("td", {}, fmtNumber(base, 3)),
      el("td", { class: gain === null ? null : gain > 0 ? "better" : "worse" },
        diff === null ? DASH : (diff > 0 ? "+" : "") + diff.toFixed(3)));
  });
  const regression = typeof test.r2 === "number";
  const table = el("table", { class: "metrics" },
    el("thead", {}, el("tr", {}, el("th", {}, "metric"), el("th", {}, "model"),
      el("th", {}, regression ? "mean baseline" : "majority baseline"),
      el("th", {}, "difference"))),
    el("tbody", {}, ...rows));
  // The verdict is the evaluation's (one rule: better on both metrics, docs/evaluation.md).
  const sentence = verdictOf(evaluation);
  const verdict = sentence === null ? null
    : el("p", { class: verdictClass(sentence) }, "Verdict: " + sentence + ".");
  return el("div", {}, table, verdict);
}

// ---- the selected training ---------------------------------------------------------------

function definitionList(pairs) {
  return el("dl", {}, ...pairs.flatMap(([term, value, role]) => [el("dt", {}, term),
    el("dd", { "data-role": role || null },
      value === null || value === undefined || value === "" ? DASH : value)]));
}

function stoppedEarlyText(view) {
  if (!view.progress) return DASH;
  if (view.stopped_early) {
    return "yes, after epoch " + epochsDone(view.progress) + " of " + view.progress.total_epochs;
  }
  return view.status === "completed" ? "no" : DASH;
}

function renderDetail() {
  if (selectedId === null || stream === null || stream.id !== selectedId) return;
  const view = viewOf(selectedId);
  const performance = stream.data.performance;
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-id").textContent = view.training_id;
  document.getElementById("detail-status").replaceChildren(statusBadge(view.status));
  const note = document.getElementById("detail-note");
  const unreachable = view.status === UNREACHABLE;
  note.textContent = unreachable ? "Host unreachable since " + fmtTime(view.unreachable_since) +
    "; last known status: " + (view.last_known_status || "unknown") + ". " +
    (view.detail || "") : "";
  note.hidden = !unreachable;
  const error = document.getElementById("detail-error");
  error.textContent = view.error || "";
  error.hidden = !view.error;
  document.getElementById("detail-summary").replaceChildren(...definitionList([
    ["strategy", strategyName(view), "detail-strategy"],
    ["symbols", listText(view.symbols) + " · " + listText(view.timeframes)],
    ["progress", progressText(view), "detail-progress"],
    ["ETA", fmtDuration(etaSeconds(view)), "detail-eta"],
    ["best epoch", bestEpoch(view), "detail-best-epoch"],
    ["stopped early", stoppedEarlyText(view), "detail-stopped-early"],
    ["model", view.model_id || view.model_path, "detail-model"],
  ]).childNodes);
  const history = view.history || performance.history || [];
  document.getElementById("loss-chart").replaceChildren(
    lineChart(seriesLines(history, SERIES), null));
  document.getElementById("accuracy-chart").replaceChildren(
    lineChart(seriesLines(history, ACCURACY), [0, 1]));
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
  const changed = selectedId !== id;
  selectedId = id;
  for (const row of document.querySelectorAll("#trainings tbody tr")) {
    row.classList.toggle("selected", row.dataset.trainingId === id);
  }
  if (changed) {
    const item = listItems.get(id);
    document.getElementById("tags-input").value = item && item.tags ? item.tags.join(", ") : "";
  }
  refreshDetail().catch(() => {}); // the next poll tries again
}

// The selected training follows its event stream; the list keeps polling.
async function refreshDetail() {
  if (selectedId === null || (stream !== null && stream.id === selectedId)) return;
  const id = selectedId;
  const data = await loadTraining(id);
  if (id !== selectedId || (stream !== null && stream.id === id)) return;
  stream = new TrainingStream(id, data, () => {
    if (stream !== null && stream.id === id) {
      renderDetail();
      rerenderRow(id);
    }
  });
  renderDetail();
  rerenderRow(id);
}

function setUpTagsForm() {
  document.getElementById("tags-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (selectedId === null) return;
    const id = selectedId;
    const tags = splitList(document.getElementById("tags-input").value);
    try {
      const body = await api("PATCH", trainingPath(id), { tags });
      showMessage("Tags of " + id + ": " + listText(body.tags), false);
    } catch (error) {
      showMessage("Could not tag " + id + ": " + error.message, true);
    }
    refresh();
  });
}

// ---- comparison of selected runs ----------------------------------------------------------

function runLabel(status) {
  return status.training_id.slice(0, 12);
}

function comparisonTable(runs) {
  const metricNames = [];
  for (const run of runs) {
    for (const [name, value] of Object.entries(run.performance.test_metrics || {})) {
      if (typeof value === "number" && !metricNames.includes(name)) metricNames.push(name);
    }
  }
  const cellsFor = (pick, role) => runs.map((run) => el("td", { "data-role": role || null },
    pick(run)));
  const rows = [
    ["status", (run) => run.status.status],
    ["strategy", (run) => strategyName(run.status)],
    ["symbols", (run) => listText(run.status.symbols) + " · " + listText(run.status.timeframes)],
    ["epochs", (run) => progressText(run.status)],
    ["best epoch", (run) => bestEpoch({ ...run.status, history: run.performance.history })],
    ...metricNames.map((name) => [name,
      (run) => fmtNumber((run.performance.test_metrics || {})[name], 3)]),
  ].map(([name, pick]) => el("tr", {}, el("th", {}, name), ...cellsFor((run) => {
    const value = pick(run);
    return value === null || value === undefined ? DASH : value;
  })));
  const verdicts = runs.map((run) => {
    const sentence = verdictOf(run.performance.evaluation);
    return el("td", { class: sentence ? verdictClass(sentence) : "muted",
      "data-role": "compare-verdict" }, sentence || "no verdict yet");
  });
  rows.push(el("tr", {}, el("th", {}, "verdict"), ...verdicts));
  return el("table", { class: "metrics comparison" },
    el("thead", {}, el("tr", {}, el("th", {}, "run"),
      ...runs.map((run) => el("th", {}, el("code", {}, runLabel(run.status)))))),
    el("tbody", {}, ...rows));
}

function overlay(runs, key) {
  return runs.map((run, i) => ({ name: run.status.training_id, label: runLabel(run.status),
    color: RUN_COLORS[i % RUN_COLORS.length], points: pointsOf(run.performance.history, key) }));
}

async function compareSelected() {
  const ids = [...compareIds];
  try {
    const runs = await Promise.all(ids.map((id) => loadTraining(id)));
    const panel = document.getElementById("comparison");
    panel.hidden = false;
    panel.dataset.runs = ids.join(" ");
    document.getElementById("comparison-ids").textContent = "(" + ids.length + " runs)";
    document.getElementById("compare-loss-chart").replaceChildren(
      lineChart(overlay(runs, "val_loss"), null));
    document.getElementById("compare-accuracy-chart").replaceChildren(
      lineChart(overlay(runs, "val_accuracy"), [0, 1]));
    document.getElementById("comparison-table").replaceChildren(comparisonTable(runs));
  } catch (error) {
    showMessage("Could not compare: " + error.message, true);
  }
}

// ---- models -------------------------------------------------------------------------------

function shortMetrics(metrics) {
  if (!metrics) return DASH;
  const names = Object.keys(metrics).filter((k) => typeof metrics[k] === "number").slice(0, 3);
  return names.length ? names.map((k) => k + " " + metrics[k].toFixed(3)).join(" · ") : DASH;
}

function trainingTags(trainingId) {
  const item = trainingId ? listItems.get(trainingId) : undefined;
  return item && item.tags ? listText(item.tags) : DASH;
}

function modelRow(model) {
  const id = model.model_id;
  const verdict = model.verdict || null;
  return el("tr", { "data-model-id": id },
    el("td", {}, el("code", {}, id), el("br"), el("small", {}, model.name || "")),
    el("td", {}, model.strategy || DASH),
    el("td", {}, listText(model.symbols), el("small", {}, " " + listText(model.timeframes))),
    el("td", {}, fmtTime(model.created_at)),
    el("td", {}, shortMetrics(model.test_metrics)),
    el("td", { class: verdict ? verdictClass(verdict) : "muted", "data-role": "model-verdict" },
      verdict || DASH),
    el("td", {}, model.training_id ? el("code", {}, model.training_id.slice(0, 12)) : "CLI"),
    el("td", { "data-role": "model-tags" }, trainingTags(model.training_id)),
    el("td", {}, el("span", { class: "actions" },
      el("button", { class: "download", type: "button",
        onclick: () => downloadModel(id) }, "Download"),
      el("button", { class: "delete-model", type: "button",
        onclick: () => deleteModel(id) }, "Delete"))));
}

function renderModels(body) {
  const tbody = document.querySelector("#models tbody");
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.modelId, row]));
  const rows = body.models.map((model) => {
    const row = existing.get(model.model_id);
    return row ? updateRow(row, modelRow(model)) : modelRow(model);
  });
  tbody.replaceChildren(...rows);
  document.getElementById("model-count").textContent = "(" + body.total + ")";
  const note = document.getElementById("models-note");
  const hostMissing = body.host_reachable === false;
  note.textContent = hostMissing ? "The host cannot be asked: its models are missing here."
    : body.models.length ? "" : "No models yet.";
  note.hidden = !note.textContent;
}

async function refreshModels(force) {
  if (!force && Date.now() - modelsReadAt < MODELS_POLL_MS) return;
  modelsReadAt = Date.now();
  let body;
  try {
    body = await api("GET", MODELS + "?limit=50");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    // The trainings still show: only this panel says what went wrong.
    const note = document.getElementById("models-note");
    note.textContent = "Models cannot be listed: " + error.message;
    note.hidden = false;
    return;
  }
  renderModels(body);
}

// The archive needs the token, so it is fetched and handed to the browser as a file.
async function downloadModel(id) {
  try {
    const response = await fetch(MODELS + "/" + encodeURIComponent(id) + "/download",
      { headers: authHeaders("application/gzip, application/json") });
    checkToken(response);
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new ApiError(response.status, errorText(response, body));
    }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: id + ".tar.gz", hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    showMessage("Downloaded " + id + ".tar.gz", false);
  } catch (error) {
    showMessage("Could not download " + id + ": " + error.message, true);
  }
}

async function deleteModel(id) {
  if (!window.confirm("Delete model " + id + "? Its folder (and KTRDR's copy) is removed.")) {
    return;
  }
  try {
    const body = await api("DELETE", MODELS + "/" + encodeURIComponent(id));
    showMessage("Deleted model " + id + " (" + body.files_removed.length + " files)", false);
  } catch (error) {
    // A 409 names the training that still uses it: the API's words, as they are.
    showMessage("Could not delete " + id + ": " + error.message, true);
  }
  await refreshModels(true).catch(() => {});
}

// ---- resources: GPU on the host, breaker and host on the backend ---------------------------

function renderGpu(body) {
  document.getElementById("infrastructure-title").textContent =
    body.cluster ? "GPU and cluster" : "GPU";
  const box = document.getElementById("infrastructure-body");
  box.className = "";
  box.replaceChildren(...gpuParts(body), ...clusterParts(body.cluster));
}

function gpuParts(body) {
  if (!body.available) {
    return [el("p", { class: "muted", "data-role": "gpu" }, body.cluster
      ? "No GPU on this host itself: sessions run on the cluster's nodes below."
      : "No GPU on this host: trainings run on the CPU.")];
  }
  return body.devices.map((d) => {
    // Device-wide use (NVML) where known; on MPS what this host's sessions hold.
    const used = d.used_memory_bytes ?? d.reserved_memory_bytes ?? d.allocated_memory_bytes;
    const share = d.total_memory_bytes && used != null ? (100 * used) / d.total_memory_bytes : 0;
    const sessions = (d.sessions || []).map((s) => s.training_id.slice(0, 8) + " " +
      fmtBytes(s.allocated_memory_bytes)).join(", ");
    return el("div", { class: "gpu", "data-role": "gpu" },
      el("strong", {}, d.name + " (" + d.device + ")"),
      progressBar(share, share.toFixed(0) + "% memory"),
      definitionList([
        ["memory", fmtBytes(used) + " of " + fmtBytes(d.total_memory_bytes)],
        ["utilisation", d.utilization_percent != null ? d.utilization_percent + " %" : DASH],
        ["temperature", d.temperature_celsius != null ? d.temperature_celsius + " °C" : DASH],
        ["sessions", sessions],
      ]));
  });
}

// Executor "ray": every node Ray knows, what it offers and the sessions placed on it.
function clusterParts(cluster) {
  if (!cluster) return [];
  if (!cluster.reachable) {
    return [el("p", { class: "error", "data-role": "cluster" },
      "The Ray cluster cannot be reached: " + cluster.error +
      ". Starts wait in the queue; running sessions are not counted lost.")];
  }
  const nodes = cluster.nodes.map((node) => el("div", {
    class: "gpu" + (node.alive ? "" : " muted"), "data-role": "cluster-node",
    "data-node": node.node,
  },
  el("strong", {}, "node " + node.node.slice(0, 12) + " (" + node.node_address + ")" +
      (node.alive ? "" : " · dead")),
  definitionList([
    ["CPUs", String(node.cpus)],
    ["GPUs", String(node.gpus)],
    ["memory", fmtBytes(node.memory_bytes)],
    ["sessions", node.sessions.length
      ? node.sessions.map((id) => id.slice(0, 8)).join(", ") : DASH],
  ])));
  const unplaced = cluster.unplaced_sessions.length
    ? [el("p", { class: "muted", "data-role": "cluster-unplaced" }, "Waiting for a node: " +
      cluster.unplaced_sessions.map((id) => id.slice(0, 8)).join(", "))]
    : [];
  return [el("h3", {}, "Cluster (" + cluster.nodes.length + " nodes)"), ...nodes, ...unplaced];
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
    // Failures keep counting after the breaker opened: the threshold is when it opens.
    ["failures in a row", breaker.failure_count + " (the breaker opens at " +
      breaker.failure_threshold + ")"],
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
    renderDetail();
    if (!strategiesLoaded) await loadStrategies();
    await Promise.all([refreshDetail(), refreshResources(), refreshModels(false)]);
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
setUpStartForm();
setUpTagsForm();
document.getElementById("compare-button").addEventListener("click", compareSelected);
refresh();
setInterval(refresh, POLL_MS);
