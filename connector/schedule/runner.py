"""Running a schedule's slots: claim the slot, run the export through `run_export` with the
slot's time as its session, record the outcome in the history."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from connector.api import ExportObserver, ExportSpec, run_export
from connector.cancel import CancelToken
from connector.errors import Cancelled, ConfigError, ConnectorError
from connector.mapping import OutputMapping, mapping_to_dict, parse_mapping
from connector.report import JobReport
from connector.session import SessionContext

from connector.workflow import (WorkflowObserver, WorkflowResult, WorkflowSpec, load_workflow,
                                run_workflow)

from .state import state_home
from .store import AlreadyClaimed, Claim, RunRecord, Schedule, ScheduleStore
from .workflows import session_for

# The kinds a slot runs as one export.
EXPORT_KINDS = ("export", "activation")


def export_definition(query: str, output: Mapping[str, Any], database_url: str | None,
                      query_file: str | None = None,
                      connection: str | None = None) -> dict[str, Any]:
    """What an export schedule stores: the query text, the output configuration as the export
    command receives it (a saved connection's name and the settings over it, or the whole
    configuration; ${NAME} unexpanded, secrets read when the slot runs, so a rotated token
    reaches the next slot), the database URL."""
    return {"query": query, "query_file": query_file, "connection": connection,
            "output": dict(output), "database_url": database_url}


def activation_definition(export: Mapping[str, Any], mapping: OutputMapping) -> dict[str, Any]:
    """What an activation stores: its export, and its output mapping with the segment's
    metadata."""
    return {**export, "mapping": mapping_to_dict(mapping)}


def report_path(schedule: Schedule, slot: dt.datetime, attempt: int) -> Path:
    stamp = slot.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return state_home() / "reports" / schedule.name / f"{stamp}-{attempt}.json"


def export_spec(schedule: Schedule, slot: dt.datetime, report: str | None) -> ExportSpec:
    """The export a slot runs: the stored definition, with the slot's time as its session."""
    d = schedule.definition
    mapping = parse_mapping(d["mapping"]) if d.get("mapping") is not None else OutputMapping()
    return ExportSpec(query=d["query"], output=d["output"], connection=d.get("connection"),
                      database_url=d.get("database_url"), report_path=report, mapping=mapping,
                      activation=schedule.name if schedule.kind == "activation" else None,
                      session=SessionContext(slot, schedule.timezone))


@dataclass
class SlotOutcome:
    scheduled_time: dt.datetime
    status: str  # success | error | config_error | skipped
    attempt: int | None = None
    report: JobReport | None = None
    error: str | None = None
    earlier: RunRecord | None = None  # the run that made this slot skip
    report_path: str | None = None
    workflow: WorkflowResult | None = None  # a workflow schedule's run


def run_slot(store: ScheduleStore, schedule: Schedule, slot: dt.datetime, *, again: bool = False,
             cancel: CancelToken | None = None, observer: ExportObserver | None = None,
             claim: Claim | None = None,
             workflow_observer: WorkflowObserver | None = None) -> SlotOutcome:
    """Claim `slot` and run it. A slot claimed before is skipped unless `again`. With `claim`
    (the scheduler service claimed the slot under a lease), run that attempt."""
    if schedule.kind not in (*EXPORT_KINDS, "workflow"):
        raise ConfigError(f"schedule {schedule.name!r}: kind {schedule.kind!r} cannot run")
    unix = int(slot.timestamp())
    if claim is None:
        try:
            claim = store.claim(schedule.name, unix, again=again)
        except AlreadyClaimed as exc:
            return SlotOutcome(slot, "skipped", earlier=exc.latest)
    if schedule.kind == "workflow":
        return _run_workflow_slot(store, schedule, slot, claim.run_id, claim.attempt, cancel,
                                  workflow_observer)
    path = report_path(schedule, slot, claim.attempt)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    report: JobReport | None = None
    try:
        report = run_export(export_spec(schedule, slot, str(path)), cancel, observer)
    except ConfigError as exc:
        store.finish(claim.run_id, None, "error", ConfigError.reason, str(exc), None)
        return SlotOutcome(slot, "config_error", claim.attempt, error=str(exc))
    except (Cancelled, KeyboardInterrupt):
        store.finish(claim.run_id, None, "error", "interrupted", "interrupted", None)
        raise
    except ConnectorError as exc:  # pragma: no cover - run_export reports these in the report
        store.finish(claim.run_id, None, "error", exc.reason, str(exc), None)
        return SlotOutcome(slot, "error", claim.attempt, error=str(exc))
    except BaseException:
        store.finish(claim.run_id, None, "error", "crashed", "the run stopped unexpectedly", None)
        raise
    data = json.loads(path.read_text()) if path.exists() else report.to_dict()
    error = report.redact(report.error) if report.error else None
    store.finish(claim.run_id, data, report.status, report.reason, error,
                 str(path) if path.exists() else None)
    status = "config_error" if report.reason == ConfigError.reason else report.status
    return SlotOutcome(slot, status, claim.attempt, report=report, error=error,
                       report_path=str(path) if path.exists() else None)


def _run_workflow_slot(store: ScheduleStore, schedule: Schedule, slot: dt.datetime, run_id: int,
                       attempt: int, cancel: CancelToken | None,
                       observer: WorkflowObserver | None) -> SlotOutcome:
    """A workflow schedule's slot: the file as it is now, the slot's time as the session; the
    run folder under the state home, its run.json in the history."""
    d = schedule.definition
    runs = state_home() / "runs" / schedule.name
    try:
        workflow = load_workflow(d["workflow"], d.get("params") or {})
        spec = WorkflowSpec(d["workflow"], d.get("params") or {}, session_for(workflow, slot),
                            d.get("database_url"), str(runs))
        result = run_workflow(spec, cancel, observer, workflow)
    except ConfigError as exc:
        store.finish(run_id, None, "error", ConfigError.reason, str(exc), None)
        return SlotOutcome(slot, "config_error", attempt, error=str(exc))
    except (Cancelled, KeyboardInterrupt):
        store.finish(run_id, None, "error", "interrupted", "interrupted", None)
        raise
    except BaseException:
        store.finish(run_id, None, "error", "crashed", "the run stopped unexpectedly", None)
        raise
    summary = str(result.run_dir / "run.json")
    store.finish(run_id, result.totals(), result.status, result.reason, result.error, summary)
    return SlotOutcome(slot, result.status, attempt, error=result.error, report_path=summary,
                       workflow=result)
