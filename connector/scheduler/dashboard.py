"""The read-only dashboard and the Prometheus metrics, served from the state database.

    GET /                              the page (static/index.html + dashboard.js, no build step)
    GET /api/schedules                 every schedule: cron, zone, next run, last status, enabled
    GET /api/schedules/{name}/history  one schedule's runs (newest first), counts by status
    GET /metrics                       Prometheus text format

Built like the sandbox's console: static files polling a JSON API, everything inserted as text.
It shows no query, no output configuration and no notification target (they may hold secrets);
errors are shown as the history holds them, secrets already removed. Every other method is 405.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connector.errors import ConfigError
from connector.schedule import cron as cronmod
from connector.schedule.claims import QUEUED, RUNNING, ScheduleRow, schedule_rows
from connector.schedule.state import runs, schedules, slots
from connector.schedule.store import RunRecord, ScheduleStore
from connector.source import safe_url

from .service import iso

STATIC_DIR = Path(__file__).with_name("static")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788
HISTORY_LIMIT = 200  # runs a history page lists (the counts cover every run)
# Finished states, in the order the page shows their counters.
STATUSES = ("success", "error", "skipped", "abandoned")
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


# --------------------------------------------------------------------------- data
def _counts(store: ScheduleStore) -> dict[str, dict[str, Any]]:
    """Per schedule: runs by status, events sent, the last success."""
    query = (sa.select(schedules.c.name, runs.c.status, sa.func.count().label("n"),
                       sa.func.coalesce(sa.func.sum(runs.c.events_sent), 0).label("events"),
                       sa.func.max(runs.c.finished_at).label("last"))
             .select_from(runs.join(slots, runs.c.slot_id == slots.c.id)
                          .join(schedules, slots.c.schedule_id == schedules.c.id))
             .group_by(schedules.c.name, runs.c.status))
    out: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(query):
            entry = out.setdefault(r.name, {"runs": {}, "events_sent": 0, "last_success": None})
            entry["runs"][r.status] = int(r.n)
            entry["events_sent"] += int(r.events)
            if r.status == "success":
                entry["last_success"] = r.last
    return out


def _last_finished(store: ScheduleStore) -> dict[str, RunRecord]:
    """Each schedule's newest finished run (by slot, then attempt), skipped ones aside."""
    latest = (sa.select(slots.c.schedule_id, sa.func.max(slots.c.scheduled_time).label("t"))
              .select_from(runs.join(slots, runs.c.slot_id == slots.c.id))
              .where(runs.c.status.in_(("success", "error", "abandoned")))
              .group_by(slots.c.schedule_id).subquery())
    query = (sa.select(schedules.c.name, runs.c.id)
             .select_from(runs.join(slots, runs.c.slot_id == slots.c.id)
                          .join(schedules, slots.c.schedule_id == schedules.c.id)
                          .join(latest, sa.and_(latest.c.schedule_id == slots.c.schedule_id,
                                                latest.c.t == slots.c.scheduled_time)))
             .where(runs.c.status.in_(("success", "error", "abandoned")))
             .order_by(runs.c.attempt))
    with store.engine.connect() as conn:
        ids = {r.name: r.id for r in conn.execute(query)}  # the highest attempt wins
    out = {}
    for name, run_id in ids.items():
        record = store.run(run_id)
        if record is not None:
            out[name] = record
    return out


def _open(store: ScheduleStore) -> dict[str, dict[str, int]]:
    query = (sa.select(schedules.c.name, runs.c.status, sa.func.count().label("n"))
             .select_from(runs.join(slots, runs.c.slot_id == slots.c.id)
                          .join(schedules, slots.c.schedule_id == schedules.c.id))
             .where(runs.c.status.in_((QUEUED, RUNNING)))
             .group_by(schedules.c.name, runs.c.status))
    out: dict[str, dict[str, int]] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(query):
            out.setdefault(r.name, {})[r.status] = int(r.n)
    return out


def _next_run(row: ScheduleRow, now: float) -> dict[str, str] | None:
    s = row.schedule
    try:
        tz = s.tzinfo()
        upcoming = cronmod.next_runs(s.parsed(), tz, dt.datetime.fromtimestamp(
            now - s.delay, dt.timezone.utc), 1)
    except ConfigError:
        return None
    if not upcoming:
        return None
    slot = upcoming[0]
    return {"scheduled_time": slot.isoformat(timespec="seconds"),
            "starts_at": (slot + dt.timedelta(seconds=s.delay)).isoformat(timespec="seconds")}


def _run(record: RunRecord, tz: dt.tzinfo) -> dict[str, Any]:
    return {
        "scheduled_time": iso(record.scheduled_time, tz), "attempt": record.attempt,
        "status": record.status, "reason": record.reason, "started": iso(record.started_at, tz),
        "finished": iso(record.finished_at, tz), "rows_read": record.rows_read,
        "events_sent": record.events_sent, "invalid_records": record.invalid_records,
        "rejected_events": record.rejected_events, "failed_events": record.failed_events,
        "host": record.host, "error": record.error, "note": record.note,
    }


def overview(store: ScheduleStore, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    counts, last, open_ = _counts(store), _last_finished(store), _open(store)
    out = []
    for row in schedule_rows(store):
        s = row.schedule
        tz = s.tzinfo()
        previous = last.get(s.name)
        c = counts.get(s.name, {"runs": {}, "events_sent": 0, "last_success": None})
        out.append({
            "name": s.name, "kind": s.kind, "cron": s.cron, "timezone": s.timezone,
            "delay": s.delay, "enabled": s.enabled, "disabled_reason": s.disabled_reason,
            "catchup": s.catchup, "catchup_limit": s.catchup_limit, "overlap": s.overlap,
            "notifications": len(s.notify),
            "next_run": _next_run(row, now) if s.enabled else None,
            "last_status": previous.status if previous else None,
            "last_scheduled_time": iso(previous.scheduled_time, tz) if previous else None,
            "running": open_.get(s.name, {}).get(RUNNING, 0),
            "queued": open_.get(s.name, {}).get(QUEUED, 0),
            "runs": c["runs"], "events_sent": c["events_sent"],
            "last_success": iso(c["last_success"], tz),
        })
    return {"generated_at": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(
        timespec="seconds"), "state": safe_url(store.url), "schedules": out}


def history(store: ScheduleStore, name: str, limit: int = HISTORY_LIMIT) -> dict[str, Any]:
    schedule = store.get(name)
    tz = schedule.tzinfo()
    records = store.history(name, limit)
    c = _counts(store).get(name, {"runs": {}, "events_sent": 0, "last_success": None})
    return {"name": name, "timezone": schedule.timezone, "counts": c["runs"],
            "events_sent": c["events_sent"], "listed": len(records),
            "runs": [_run(r, tz) for r in records]}


# --------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class Metric:
    name: str  # a counter's samples get `_total`
    kind: str  # counter | gauge
    help: str
    labels: tuple[str, ...]

    @property
    def exposed(self) -> str:
        return self.name + ("_total" if self.kind == "counter" else "")

    def family(self) -> Any:
        cls = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
        return cls(self.name, self.help, labels=list(self.labels))


# What /metrics exposes, declared once (the collector and the docs' table read it).
METRICS = {m.name: m for m in (
    Metric("connector_schedule_runs", "counter", "Runs of each schedule by status: success, "
           "error, skipped (catch-up, overlap, disabled), abandoned (its scheduler died)",
           ("schedule", "status")),
    Metric("connector_schedule_events_sent", "counter",
           "Events the API accepted, over every run of the schedule", ("schedule",)),
    Metric("connector_schedule_last_success_timestamp_seconds", "gauge",
           "When the schedule's last successful run finished (UNIX time; absent before the "
           "first)", ("schedule",)),
    Metric("connector_schedule_enabled", "gauge", "1 when the schedule is enabled",
           ("schedule",)),
    Metric("connector_schedule_runs_in_progress", "gauge", "Slots queued or running now",
           ("schedule", "state")),
    Metric("connector_schedule_consecutive_config_errors", "gauge",
           "Consecutive runs that failed with a configuration error (3 disable the schedule)",
           ("schedule",)),
)}


def metrics_markdown() -> str:
    rows = ["| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    for m in METRICS.values():
        rows.append(f"| `{m.exposed}` | {m.kind} | {', '.join(f'`{label}`' for label in m.labels)}"
                    f" | {m.help} |")
    return "\n".join(rows)


class StateCollector:
    """Prometheus metrics read from the state database at each scrape (the same on every
    scheduler that shares it)."""

    def __init__(self, store: ScheduleStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        f = {name: m.family() for name, m in METRICS.items()}
        counts, open_ = _counts(self.store), _open(self.store)
        for row in schedule_rows(self.store):
            name = row.schedule.name
            c = counts.get(name, {"runs": {}, "events_sent": 0, "last_success": None})
            for status in STATUSES:
                f["connector_schedule_runs"].add_metric([name, status], c["runs"].get(status, 0))
            f["connector_schedule_events_sent"].add_metric([name], c["events_sent"])
            if c["last_success"] is not None:
                f["connector_schedule_last_success_timestamp_seconds"].add_metric(
                    [name], c["last_success"])
            f["connector_schedule_enabled"].add_metric([name], 1 if row.schedule.enabled else 0)
            for state in (QUEUED, RUNNING):
                f["connector_schedule_runs_in_progress"].add_metric(
                    [name, state], open_.get(name, {}).get(state, 0))
            f["connector_schedule_consecutive_config_errors"].add_metric([name],
                                                                          row.config_errors)
        yield from f.values()


def metrics_text(store: ScheduleStore) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(store))  # type: ignore[arg-type]
    return generate_latest(registry)


# --------------------------------------------------------------------------- the app
def create_app(store: ScheduleStore) -> Starlette:
    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)

    async def api_schedules(request: Request) -> Response:
        data = await run_in_threadpool(overview, store)
        return JSONResponse(data, headers=SECURITY_HEADERS)

    async def api_history(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            data = await run_in_threadpool(history, store, name)
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404, headers=SECURITY_HEADERS)
        return JSONResponse(data, headers=SECURITY_HEADERS)

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(metrics_text, store)
        return Response(body, media_type=CONTENT_TYPE_LATEST,
                        headers={"cache-control": "no-store"})

    return Starlette(routes=[
        Route("/", page, methods=["GET"]),
        Route("/api/schedules", api_schedules, methods=["GET"]),
        Route("/api/schedules/{name:path}/history", api_history, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def serve_dashboard(store: ScheduleStore, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
                    ) -> Iterator[str]:
    """Serve the dashboard on a background thread; yields its base URL."""
    try:
        sock = _bind(host, port)
    except OSError as exc:
        raise ConfigError(f"--ui-port: cannot listen on {host}:{port}: "
                          f"{exc.strerror or exc}") from None
    config = uvicorn.Config(create_app(store), log_level="warning", access_log=False,
                            lifespan="off", server_header=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported below
            failure.append(exc)

    thread = threading.Thread(target=serve, name="scheduler-dashboard", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if failure or not thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("--ui: the dashboard server did not start")
            time.sleep(0.01)
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
