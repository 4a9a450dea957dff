// The scheduler dashboard: polls the JSON API every 5 s and renders it. No build step, no
// libraries. Everything from the API is inserted with textContent, never as HTML.
"use strict";

const POLL_MS = 5000;
const CHART_RUNS = 50;
const SVG = "http://www.w3.org/2000/svg";
const STATUSES = ["success", "error", "skipped", "abandoned"];

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function cell(text, id, cls) {
  const td = el("td", text === null || text === undefined ? "" : text, cls);
  if (id) td.id = id;
  return td;
}

function num(n, id) { return cell(n === null || n === undefined ? "-" : n, id, "num"); }

function fill(tableId, rows) {
  document.querySelector("#" + tableId + " tbody").replaceChildren(...rows);
}

function setText(id, value) { document.getElementById(id).textContent = String(value); }

async function getJSON(path) {
  const response = await fetch(path, {cache: "no-store"});
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function selectedName(schedules) {
  const asked = new URLSearchParams(window.location.search).get("schedule");
  if (asked !== null && schedules.some((s) => s.name === asked)) return asked;
  return schedules.length ? schedules[0].name : null;
}

function statusText(status, reason) {
  if (!status) return "never ran";
  return reason ? status + " (" + reason + ")" : status;
}

function renderSchedules(data, selected) {
  setText("state", data.state);
  if (!data.schedules.length) {
    fill("schedules", [(() => { const tr = el("tr"); const td = cell("no schedules (connector schedule create ...)", null, "hint"); td.colSpan = 12; tr.appendChild(td); return tr; })()]);
    return;
  }
  fill("schedules", data.schedules.map((s, i) => {
    const tr = el("tr");
    tr.dataset.name = s.name;
    if (s.name === selected) tr.className = "selected";
    const link = el("a", s.name);
    link.href = "?schedule=" + encodeURIComponent(s.name);
    const nameCell = cell(null, "sched-" + i + "-name");
    nameCell.appendChild(link);
    const total = Object.values(s.runs).reduce((a, b) => a + b, 0);
    const now = s.running ? "running" : (s.queued ? s.queued + " queued" : "");
    const enabled = s.enabled ? "yes" : ("no" + (s.disabled_reason ? ": " + s.disabled_reason : ""));
    const catchup = s.catchup === "all" ? "all (limit " + s.catchup_limit + ")" : s.catchup;
    tr.append(nameCell,
      cell(s.kind, "sched-" + i + "-kind"),
      cell(s.cron === "" ? '""' : s.cron, "sched-" + i + "-cron"),
      cell(s.timezone, "sched-" + i + "-timezone"),
      cell(s.next_run ? s.next_run.scheduled_time : "-", "sched-" + i + "-next", "time"),
      cell(s.last_status || "never ran", "sched-" + i + "-last", "status-" + (s.last_status || "none")),
      cell(enabled, "sched-" + i + "-enabled"),
      cell(catchup, "sched-" + i + "-catchup"),
      cell(s.overlap, "sched-" + i + "-overlap"),
      cell(now, "sched-" + i + "-now"),
      num(total, "sched-" + i + "-runs"),
      num(s.events_sent, "sched-" + i + "-events"));
    return tr;
  }));
}

function renderChart(runs) {
  const svg = document.getElementById("chart");
  const shown = runs.slice(0, CHART_RUNS).reverse();  // oldest left
  const width = 720, height = 120, top = 8, bottom = 18, left = 4;
  const slot = shown.length ? Math.min(40, (width - left * 2) / shown.length) : 0;
  const max = Math.max(1, ...shown.map((r) => r.events_sent || 0));
  const nodes = [];
  const axis = document.createElementNS(SVG, "line");
  axis.setAttribute("class", "axis");
  axis.setAttribute("x1", "0"); axis.setAttribute("x2", String(width));
  axis.setAttribute("y1", String(height - bottom)); axis.setAttribute("y2", String(height - bottom));
  nodes.push(axis);
  shown.forEach((r, i) => {
    const events = r.events_sent || 0;
    const h = Math.max(2, Math.round((height - top - bottom) * events / max));
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("id", "bar-" + i);
    rect.setAttribute("class", "bar-" + r.status);
    rect.setAttribute("x", String(left + i * slot + 1));
    rect.setAttribute("width", String(Math.max(1, slot - 2)));
    rect.setAttribute("y", String(height - bottom - h));
    rect.setAttribute("height", String(h));
    rect.dataset.events = String(events);
    rect.dataset.status = r.status;
    const title = document.createElementNS(SVG, "title");
    title.textContent = r.scheduled_time + " attempt " + r.attempt + ": " + statusText(r.status, r.reason) + ", " + events + " events sent";
    rect.appendChild(title);
    nodes.push(rect);
  });
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", String(left)); label.setAttribute("y", String(height - 4));
  label.textContent = shown.length ? "max " + max + " events; " + shown.length + " runs" : "no runs yet";
  nodes.push(label);
  svg.replaceChildren(...nodes);
  svg.dataset.bars = String(shown.length);
}

function renderHistory(data) {
  document.getElementById("detail").hidden = false;
  setText("detail-name", data.name);
  setText("detail-listed", "(newest " + data.listed + " runs; times in " + data.timezone + ")");
  for (const status of STATUSES) setText("count-" + status, data.counts[status] || 0);
  setText("total-events", data.events_sent);
  renderChart(data.runs);
  fill("history", data.runs.map((r, i) => {
    const tr = el("tr");
    tr.append(cell(r.scheduled_time, "run-" + i + "-scheduled", "time"),
      num(r.attempt, "run-" + i + "-attempt"),
      cell(statusText(r.status, r.reason), "run-" + i + "-status", "status-" + r.status),
      cell(r.started, "run-" + i + "-started", "time"),
      cell(r.finished, "run-" + i + "-finished", "time"),
      num(r.rows_read, "run-" + i + "-read"),
      num(r.events_sent, "run-" + i + "-sent"),
      num(r.invalid_records, "run-" + i + "-invalid"),
      num(r.failed_events, "run-" + i + "-failed"),
      cell(r.host, "run-" + i + "-host"),
      cell([r.error, r.note].filter((x) => x).join(" \u2014 "), "run-" + i + "-message"));
    return tr;
  }));
}

let refreshes = 0;

async function refresh() {
  const error = document.getElementById("error");
  try {
    const data = await getJSON("/api/schedules");
    const selected = selectedName(data.schedules);
    renderSchedules(data, selected);
    if (selected !== null) {
      renderHistory(await getJSON("/api/schedules/" + encodeURIComponent(selected) + "/history"));
    } else {
      document.getElementById("detail").hidden = true;
    }
    setText("last-updated", new Date().toLocaleTimeString([], {hour12: false}));
    error.hidden = true;
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    document.body.dataset.selected = selected === null ? "" : selected;
    document.body.dataset.ready = "true";
  } catch (err) {
    error.textContent = "cannot reach the scheduler: " + err.message;
    error.hidden = false;
  }
}

refresh();
setInterval(refresh, POLL_MS);
