// The sandbox console: polls the sandbox API every 2 s and renders it. No build step, no libraries.
// Everything from the API is inserted with textContent, never as HTML.
"use strict";

const API = "/sandbox/api";
const POLL_MS = 2000;
const IDENTIFIERS = ["email", "phone", "line_uid", "click_id", "browser_id", "ifa", "external_id"];

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  return tr;
}

function num(n) { return el("td", n, "num"); }

// An empty table says so, in one cell across its columns.
function fill(tableId, rows) {
  const table = document.getElementById(tableId);
  if (!rows.length) {
    const cell = el("td", "none", "none");
    cell.colSpan = table.querySelectorAll("thead th").length;
    rows = [row([cell])];
  }
  table.querySelector("tbody").replaceChildren(...rows);
}

function setText(id, value) {
  document.getElementById(id).textContent = String(value);
}

function time(epoch) {
  const d = new Date(epoch * 1000);
  return d.toLocaleTimeString([], {hour12: false}) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function truncate(value, length = 12) {
  const s = String(value);
  return s.length > length ? s.slice(0, length - 2) + "\u2026" : s;
}

async function getJSON(path) {
  const response = await fetch(API + path, {cache: "no-store"});
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function renderStats(stats) {
  document.getElementById("mode").textContent = stats.any_token
    ? "any tag, any non-empty token"
    : "configured tags only";
  setText("storage", stats.storage);
  setText("stat-requests", stats.requests);
  setText("stat-accepted", stats.accepted);
  setText("stat-duplicates", stats.duplicates);
  setText("stat-without-identifier", stats.without_identifier);
  setText("stat-rejected", stats.rejected_requests);
  setText("stat-rejected-events", stats.rejected_events);
  setText("stat-rejected-resends", stats.rejected_resends);
  setText("stat-rejected-copies", stats.events_in_rejected_requests);
  setText("stat-faulted", stats.faulted_requests);
  setText("stat-dropped", stats.dropped_connections);

  fill("coverage", IDENTIFIERS.map((key) => {
    const count = stats.coverage[key] || 0;
    const share = stats.coverage_share[key] || 0;
    const countCell = num(count);
    countCell.id = "cov-" + key + "-count";
    const shareCell = num((share * 100).toFixed(1) + "%");
    shareCell.id = "cov-" + key;
    shareCell.dataset.share = String(share);
    const bar = el("div", null, "bar");
    const inner = el("div");
    inner.style.width = (share * 100).toFixed(1) + "%";
    bar.appendChild(inner);
    const barCell = el("td");
    barCell.appendChild(bar);
    return row([el("td", key), countCell, shareCell, barCell]);
  }));

  fill("by-status", Object.keys(stats.by_status).sort().map((status) =>
    row([el("td", status), num(stats.by_status[status])])));

  fill("per-tag", Object.keys(stats.per_tag).sort().map((tag) => {
    const t = stats.per_tag[tag];
    return row([el("td", tag), num(t.requests), num(t.accepted), num(t.duplicates),
                num(t.rejected_requests), num(t.rejected_events)]);
  }));
}

function renderEvents(data) {
  const rows = data.events.slice().reverse().map((item) => {
    const ev = item.event.event || {};
    const user = item.event.user || {};
    const ids = el("td");
    for (const key of IDENTIFIERS) {
      if (!(key in user)) continue;
      const code = el("code", key + "=" + truncate(user[key]));
      ids.appendChild(code);
      ids.appendChild(document.createTextNode(" "));
    }
    const custom = item.event.custom;
    const customCell = el("td", custom ? truncate(JSON.stringify(custom), 80) : "", "custom");
    return row([time(item.received_at), item.tag, ev.event_type || "", ev.event_name || "(none)",
                truncate(ev.deduplication_key || ""),
                ev.event_timestamp ? new Date(ev.event_timestamp * 1000).toISOString().replace(".000Z", "Z") : "",
                ids, customCell, ev.test_flag ? "yes" : ""]);
  });
  fill("events", rows);
}

function renderRejected(data) {
  fill("rejected", data.requests.slice().reverse().map((r) => {
    const e = r.error || {};
    return row([time(r.time), r.tag || "", r.status, r.events === null ? "" : r.events,
                e.index === null || e.index === undefined ? "" : e.index,
                e.field || "", e.rule || "", e.reason || "", r.resend ? "yes" : ""]);
  }));
}

function renderFaults(data) {
  const items = [];
  for (const f of data.pending) items.push(el("li", JSON.stringify(f)));
  for (const f of data.standing) items.push(el("li", "standing: " + JSON.stringify(f)));
  if (!items.length) items.push(el("li", "none", "hint"));
  document.getElementById("faults").replaceChildren(...items);
}

let refreshes = 0;

async function refresh() {
  const error = document.getElementById("error");
  try {
    const [stats, events, rejected, faults] = await Promise.all([
      getJSON("/stats"),
      getJSON("/events?tail=50"),
      getJSON("/requests?status=400&tail=20"),
      getJSON("/faults"),
    ]);
    renderStats(stats);
    renderEvents(events);
    renderRejected(rejected);
    renderFaults(faults);
    setText("last-updated", new Date().toLocaleTimeString([], {hour12: false}));
    error.hidden = true;
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    document.body.dataset.ready = "true";
  } catch (err) {
    error.textContent = "cannot reach the sandbox: " + err.message;
    error.hidden = false;
  }
}

refresh();
setInterval(refresh, POLL_MS);
