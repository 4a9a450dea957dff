"""What a workflow run tells: one line per task as it ends, and a run folder that keeps each
export's report and the run's summary (run.json)."""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from connector.errors import ConfigError

# Export counts summed over a run's export tasks (the schedule history keeps them).
COUNTS = ("rows_read", "events_sent", "invalid_records", "rejected_events", "failed_events")


@dataclass
class TaskRecord:
    name: str  # digdag's full task name: +workflow+group+task
    operator: str | None  # "td", "echo", ... (None for a group)
    status: str  # success | error | disabled | blocked | interrupted
    seconds: float = 0.0
    rows: int | None = None  # rows the task's query read or wrote
    events: int | None = None  # events an export sent (accepted)
    error: str | None = None
    reason: str | None = None  # an export's report reason, config_error, ...
    report: str | None = None  # the export's JSON report in the run folder
    job_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)  # an export's report counts
    started_at: float | None = None  # UNIX time the task's work started

    def line(self) -> str:
        rows = "-" if self.rows is None else str(self.rows)
        events = "-" if self.events is None else str(self.events)
        text = f"{self.name}  {self.status}  rows={rows}  events={events}  {self.seconds:.1f}s"
        if self.error:
            text += f"  {self.error}"
        return text


class WorkflowObserver:
    """What a caller sees of a run while it goes; every method is optional and may be called
    from several threads (tasks run in parallel)."""

    def task_finished(self, record: TaskRecord) -> None:
        """A task ended (or was skipped): its line."""

    def warning(self, message: str) -> None:
        """A warning (already redacted)."""

    def echo(self, message: str) -> None:
        """What an echo> task says."""


@dataclass
class WorkflowResult:
    workflow: str
    session_time: str
    status: str  # success | error | interrupted
    run_dir: Path
    seconds: float
    tasks: list[TaskRecord] = field(default_factory=list)
    error: str | None = None  # the first failed task's error

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "success" else 1

    def totals(self) -> dict[str, int]:
        out = {k: 0 for k in COUNTS}
        for task in self.tasks:
            for key in COUNTS:
                out[key] += int(task.counts.get(key, 0))
        return out

    @property
    def reason(self) -> str | None:
        if self.status == "success":
            return None
        if self.status == "interrupted":
            return "interrupted"
        failed = [t for t in self.tasks if t.status == "error"]
        return failed[0].reason or "task_failed" if failed else "task_failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow, "session_time": self.session_time, "status": self.status,
            "reason": self.reason, "error": self.error, "seconds": round(self.seconds, 3),
            **self.totals(), "tasks": [asdict(t) for t in self.tasks],
        }

    def summary(self) -> str:
        exports = [t for t in self.tasks if t.counts]
        done = sum(1 for t in self.tasks if t.status == "success")
        text = (f"workflow {self.workflow} (session {self.session_time}): {self.status.upper()}; "
                f"{done} of {len(self.tasks)} tasks succeeded")
        if exports:
            totals = self.totals()
            text += (f"; {len(exports)} export{'s' if len(exports) != 1 else ''}: "
                     f"{totals['rows_read']} rows read, {totals['events_sent']} events sent")
        return text + f"; {self.seconds:.1f}s; run folder {self.run_dir}"


def safe_name(task_name: str) -> str:
    """A task name as a file name."""
    cleaned = re.sub(r"[^A-Za-z0-9._=-]+", "_", task_name.strip("+^")).strip("_")
    return cleaned[:120] or "task"


def session_stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def new_run_dir(base: Path, moment: dt.datetime) -> tuple[Path, int]:
    """A new folder `<session>-<attempt>` under `base` (attempts count from 1)."""
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create the run folder {base}: {exc.strerror}") from None
    stamp = session_stamp(moment)
    attempt = 1
    while True:
        path = base / f"{stamp}-{attempt}"
        try:
            path.mkdir(mode=0o700)
            return path, attempt
        except FileExistsError:
            attempt += 1
        except OSError as exc:
            raise ConfigError(f"cannot create the run folder {path}: {exc.strerror}") from None


def last_session(base: Path) -> dt.datetime | None:
    """The latest session time a run folder under `base` was made for."""
    found: list[dt.datetime] = []
    if base.is_dir():
        for child in base.iterdir():
            m = re.fullmatch(r"(\d{8}T\d{6}Z)-\d+", child.name)
            if m and child.is_dir():
                found.append(dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(
                    tzinfo=dt.timezone.utc))
    return max(found) if found else None


def write_json(path: Path, data: Any, redact: Any) -> None:
    path.write_text(redact(json.dumps(data, indent=2, default=str)) + "\n", encoding="utf-8")
