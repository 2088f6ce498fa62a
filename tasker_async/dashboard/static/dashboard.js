// The dashboard page: renders each overview the server sends (GET api/events), and sends the actions.
// Plain DOM building, never innerHTML: every name, message and traceback comes from the store.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "tasker-dashboard-token";
const FIELDS = ["ready_priority", "ready_main", "delayed", "running", "dead"];
const STEP_STATES = ["pending", "ready", "running", "succeeded", "failed", "upstream_failed", "cancelled"];
const VIEWS = ["queues", "jobs", "runs"];

const state = {
  overview: null,
  rendered: {}, // section -> the JSON it was last drawn from: unchanged sections are left alone
  openTracebacks: new Set(), // ids of the jobs and runs whose traceback is unfolded
};

function build(namespace, tag, attrs, children) {
  const el = namespace ? document.createElementNS(namespace, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
const h = (tag, attrs, ...children) => build(null, tag, attrs, children);
const s = (tag, attrs, ...children) => build(SVG, tag, attrs, children);
const $ = (id) => document.getElementById(id);

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const value = Math.max(0, seconds);
  if (value < 10) return `${value.toFixed(1)} s ago`;
  if (value < 120) return `${Math.round(value)} s ago`;
  if (value < 7200) return `${Math.round(value / 60)} min ago`;
  if (value < 172800) return `${Math.round(value / 3600)} h ago`;
  return `${Math.round(value / 86400)} days ago`;
}

function changed(section, data) {
  const text = JSON.stringify(data);
  if (state.rendered[section] === text) return false;
  state.rendered[section] = text;
  return true;
}

// -- queues and consumers

function sparkline(series) {
  const width = 180;
  const height = 30;
  const count = series.ready.length;
  const top = Math.max(1, ...series.ready, ...series.running);
  const x = (i) => (count < 2 ? width : (i / (count - 1)) * width).toFixed(1);
  const y = (v) => (height - 2 - (v / top) * (height - 4)).toFixed(1);
  const line = (values) => values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
  const area = count ? `0,${height} ${line(series.ready)} ${x(count - 1)},${height}` : "";
  const last = count ? series.ready[count - 1] : 0;
  return s(
    "svg",
    { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `ready jobs over the last minutes, now ${last}, at most ${top}` },
    s("title", {}, `ready (priority + main), peak ${top}; running as the line`),
    count ? s("polygon", { class: "spark-ready", points: area }) : null,
    count ? s("polyline", { class: "spark-running", points: line(series.running) }) : null,
  );
}

function seriesOf(history, name) {
  const queue = history.queues[name];
  if (!queue) return { ready: [], running: [] };
  return {
    ready: queue.ready_priority.map((v, i) => v + queue.ready_main[i]),
    running: queue.running,
  };
}

function renderQueues(overview) {
  const { status, history } = overview;
  if (!changed("queues", [status.queues, history])) return;
  const names = Object.keys(status.queues);
  const rows = names.map((name) => {
    const counts = status.queues[name];
    return h(
      "tr",
      { "data-queue": name },
      h("th", { scope: "row" }, name),
      FIELDS.map((field) =>
        h("td", { class: `num${counts[field] ? "" : " zero"}${field === "dead" && counts.dead ? " bad" : ""}`,
          "data-field": field }, counts[field])),
      h("td", { class: "spark-cell" }, sparkline(seriesOf(history, name))),
    );
  });
  $("queues").tBodies[0].replaceChildren(...rows);
  $("queues-empty").hidden = names.length > 0;
}

function renderConsumers(overview) {
  const consumers = overview.status.consumers;
  if (!changed("consumers", consumers)) return;
  const rows = consumers.map((c) => {
    const load = c.capacity ? Math.min(1, c.running / c.capacity) : 0;
    return h(
      "tr",
      { "data-consumer": c.id },
      h("th", { scope: "row", class: "mono" }, c.id),
      h("td", {}, c.host),
      h("td", { class: "num" }, c.pid),
      h("td", { class: "num" }, c.capacity),
      h("td", { class: "num", "data-field": "running" }, c.running),
      h("td", {}, h("meter", { min: 0, max: 1, value: load.toFixed(3), title: `${c.running} of ${c.capacity}` })),
      h("td", { class: `num${c.heartbeat_age > 10 ? " warn" : ""}` }, ago(c.heartbeat_age)),
    );
  });
  $("consumers").tBodies[0].replaceChildren(...rows);
  $("consumers-empty").hidden = consumers.length > 0;
}

// -- jobs

function traceback(id, error) {
  if (!error || !error.traceback) return null;
  const details = h(
    "details",
    { class: "traceback", open: state.openTracebacks.has(id) },
    h("summary", {}, "traceback"),
    h("pre", {}, error.traceback),
  );
  details.addEventListener("toggle", () => {
    if (details.open) state.openTracebacks.add(id);
    else state.openTracebacks.delete(id);
  });
  return details;
}

function errorLine(error) {
  if (!error) return null;
  // The class name alone reads better; the full name (module and all) is in its tooltip.
  const short = error.type.split(".").pop();
  return h("p", { class: "error-line" }, h("span", { class: "error-type", title: error.type }, short), ": ", error.message);
}

function jobCard(job, at, actions) {
  const buttons = [];
  if (actions.allowed && job.state === "dead") {
    buttons.push(h("button", { type: "button", class: "requeue", onclick: () => act(`api/jobs/${encodeURIComponent(job.id)}/requeue`, `job ${job.id} requeued`) }, "Requeue"));
  }
  return h(
    "article",
    { class: "job", "data-job-id": job.id, "data-state": job.state },
    h(
      "div",
      { class: "job-head" },
      h("span", { class: `badge state-${job.state}` }, job.state),
      h("span", { class: "job-name" }, job.name),
      h("span", { class: "job-id mono" }, job.id),
      h("span", { class: "muted" }, `queue ${job.queue}`),
      h("span", { class: "muted" }, `${job.deliveries} deliver${job.deliveries === 1 ? "y" : "ies"}`),
      job.priority ? h("span", { class: "muted" }, "priority") : null,
      job.key ? h("span", { class: "muted" }, `key ${job.key}`) : null,
      h("span", { class: "spacer" }),
      h("span", { class: "muted", title: job.finished_at ? new Date(job.finished_at * 1000).toISOString() : "" },
        job.finished_at ? ago(at - job.finished_at) : ""),
      buttons,
    ),
    errorLine(job.error),
    traceback(job.id, job.error),
  );
}

function renderJobList(id, jobs, at, actions, emptyText) {
  const cards = jobs.map((job) => jobCard(job, at, actions));
  $(id).replaceChildren(...(cards.length ? cards : [h("p", { class: "empty" }, emptyText)]));
}

function renderJobs(overview) {
  const { jobs, at, actions } = overview;
  $("count-dead").textContent = jobs.dead.length || "";
  $("count-failed").textContent = jobs.failed.length || "";
  const troubled = jobs.dead.length + jobs.failed.length;
  $("count-troubled").textContent = troubled || "";
  $("count-troubled").classList.toggle("bad", jobs.dead.length > 0);
  if (!changed("jobs", [jobs, actions, Math.floor(at / 5)])) return;
  renderJobList("jobs-dead", jobs.dead, at, actions, "No dead job.");
  renderJobList("jobs-failed", jobs.failed, at, actions, "No failed job.");
  renderJobList("jobs-recent", jobs.recent, at, actions, "No job has finished yet.");
}

// -- runs

function stepLabel(step) {
  const parts = [step.state.replace("_", " ")];
  if (step.items !== null && step.items !== undefined) parts.push(`${step.items} item${step.items === 1 ? "" : "s"}`);
  if (step.attempts > 1) parts.push(`${step.attempts} starts`);
  return parts.join(" · ");
}

function graph(run) {
  const { width, height, node, nodes, edges } = run.graph;
  const steps = Object.fromEntries(run.steps.map((step) => [step.name, step]));
  const arrow = `arrow-${run.id}`;
  return s(
    "svg",
    { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `graph of run ${run.id}` },
    s("defs", {}, s("marker", { id: arrow, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: "auto-start-reverse" }, s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }))),
    edges.map((e) => {
      const mid = (e.x1 + e.x2) / 2;
      return s("path", { class: "edge", "data-from": e.from, "data-to": e.to, "marker-end": `url(#${arrow})`,
        d: `M ${e.x1} ${e.y1} C ${mid} ${e.y1}, ${mid} ${e.y2}, ${e.x2 - 2} ${e.y2}` });
    }),
    nodes.map((n) => {
      const step = steps[n.name];
      const mapped = step.map_over !== null && step.map_over !== undefined;
      return s(
        "g",
        { class: `node state-${step.state}${mapped ? " mapped" : ""}`, "data-step": n.name, "data-state": step.state,
          transform: `translate(${n.x} ${n.y})` },
        s("title", {}, `${n.name}: ${stepLabel(step)}${step.error ? `\n${step.error.type}: ${step.error.message}` : ""}`),
        mapped ? s("rect", { class: "stack", x: 4, y: -4, width: node.width, height: node.height, rx: 7 }) : null,
        s("rect", { class: "box", width: node.width, height: node.height, rx: 7 }),
        s("text", { class: "step-name", x: 10, y: 18 }, n.name),
        s("text", { class: "step-state", x: 10, y: 34 }, stepLabel(step)),
      );
    }),
  );
}

function runCard(run, at, actions) {
  const buttons = [];
  const path = `api/runs/${encodeURIComponent(run.id)}`;
  if (actions.allowed && run.state === "running") {
    buttons.push(h("button", { type: "button", class: "danger", onclick: () => act(`${path}/cancel`, `run ${run.id} cancelled`) }, "Cancel"));
  }
  if (actions.allowed && run.state === "failed") {
    buttons.push(h("button", { type: "button", onclick: () => act(`${path}/resume`, `run ${run.id} resumed`) }, "Resume"));
  }
  const failed = run.steps.filter((step) => step.error);
  return h(
    "article",
    { class: "run", "data-run-id": run.id, "data-state": run.state },
    h(
      "div",
      { class: "job-head" },
      h("span", { class: `badge state-${run.state}` }, run.state),
      h("span", { class: "job-name" }, run.workflow),
      h("span", { class: "mono muted" }, run.id),
      run.key ? h("span", { class: "muted" }, `key ${run.key}`) : null,
      h("span", { class: "spacer" }),
      h("span", { class: "muted" }, `started ${ago(at - run.created_at)}`),
      buttons,
    ),
    h("div", { class: "graph-wrap" }, graph(run)),
    failed.map((step) => h("div", { class: "step-error" }, h("strong", {}, step.name), " ", errorLine(step.error),
      traceback(`${run.id}/${step.name}`, step.error))),
  );
}

function renderRuns(overview) {
  const { runs, at, actions } = overview;
  $("count-runs").textContent = runs.filter((run) => run.state === "running").length || "";
  if (!changed("runs", [runs, actions, Math.floor(at / 5)])) return;
  const cards = runs.map((run) => runCard(run, at, actions));
  $("runs").replaceChildren(...(cards.length ? cards : [h("p", { class: "empty" }, "No workflow run yet.")]));
}

function renderLegend() {
  $("legend").replaceChildren(
    ...STEP_STATES.map((name) => h("span", { class: `legend-item state-${name}` }, h("i"), name.replace("_", " "))),
  );
}

// -- the whole page

function render(overview) {
  state.overview = overview;
  const { actions, error } = overview;
  $("error").hidden = !error;
  $("error").textContent = error ? `The store cannot be read: ${error}` : "";
  $("mode").textContent = actions.allowed ? "actions allowed" : "read-only";
  $("mode").className = `mode${actions.allowed ? " on" : ""}`;
  $("token-field").hidden = !(actions.allowed && actions.token);
  $("cancel-job").hidden = !actions.allowed;
  renderQueues(overview);
  renderConsumers(overview);
  renderJobs(overview);
  renderRuns(overview);
}

function notify(text, bad) {
  const notice = $("notice");
  notice.textContent = text;
  notice.classList.toggle("bad", Boolean(bad));
  notice.hidden = false;
}

async function refresh() {
  const response = await fetch("api/overview", { headers: { Accept: "application/json" } });
  if (response.ok) render(await response.json());
}

async function act(path, done) {
  const headers = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method: "POST", headers, body: "{}" });
  } catch (failure) {
    notify(`The dashboard cannot be reached: ${failure}`, true);
    return;
  }
  if (response.ok) {
    notify(done, false);
    await refresh();
    return;
  }
  let message = `${response.status} ${response.statusText}`;
  try {
    message = (await response.json()).error || message;
  } catch {
    // not JSON: the status line says enough
  }
  notify(`${response.status}: ${message}`, true);
}

function showView() {
  const wanted = location.hash.slice(1);
  const view = VIEWS.includes(wanted) ? wanted : "queues";
  for (const name of VIEWS) {
    $(`view-${name}`).hidden = name !== view;
    $(`tab-${name}`).classList.toggle("active", name === view);
  }
}

function connect() {
  const live = $("live");
  const events = new EventSource("api/events");
  events.addEventListener("open", () => {
    live.dataset.state = "live";
    live.textContent = "live";
  });
  events.addEventListener("overview", (event) => render(JSON.parse(event.data)));
  events.addEventListener("error", () => {
    // EventSource reconnects by itself (after the retry the server set).
    live.dataset.state = "reconnecting";
    live.textContent = "reconnecting";
  });
}

function start() {
  const token = $("token");
  token.value = sessionStorage.getItem(TOKEN_KEY) || "";
  token.addEventListener("input", () => {
    if (token.value) sessionStorage.setItem(TOKEN_KEY, token.value);
    else sessionStorage.removeItem(TOKEN_KEY);
  });
  $("cancel-job-button").addEventListener("click", () => {
    const id = $("cancel-job-id").value.trim();
    if (id) act(`api/jobs/${encodeURIComponent(id)}/cancel`, `cancel of job ${id} sent`);
  });
  window.addEventListener("hashchange", showView);
  showView();
  renderLegend();
  connect();
}

start();
