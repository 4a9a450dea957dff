"""The one way to run an export: an ExportSpec in, a JobReport out.

The command line, `connector demo`, and later the scheduler and the workflow runner all call
`run_export`; nothing builds an argument list to call the CLI.

    from connector import ExportSpec, run_export
    report = run_export(ExportSpec(query="SELECT ... FROM 'events.csv'",
                                   output={"type": "line_conversion", ...}))
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import result_url
from connector.cancel import CancelToken
from connector.errors import ConfigError
from connector.mapping import OutputMapping
from connector.masking import Redactor
from connector.pipeline import ExportJob
from connector.report import JobReport
from connector.source import Shard, Source, database_url, shard_sql, url_secrets


@dataclass(frozen=True)
class SessionContext:
    """The time a run is for. A scheduled run carries its slot's time; any other run is for the
    moment it starts. Queries and templates read this value, never the clock, so a backfill of
    a past slot selects exactly what the slot itself would have."""

    scheduled_time: dt.datetime | None = None  # aware; None: the start of the run
    timezone: str = "UTC"

    def resolved(self) -> "SessionContext":
        if self.scheduled_time is not None:
            return self
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        return SessionContext(now, self.timezone)


@dataclass(frozen=True)
class ExportSpec:
    """Everything one export needs, as a value: it can be stored, scheduled and run again."""

    query: str
    output: Mapping[str, Any]  # the merged output configuration; ${NAME} not yet expanded
    database_url: str | None = None  # None: $CONNECTOR_DATABASE_URL, else the embedded DuckDB
    mapping: OutputMapping = field(default_factory=OutputMapping)
    shard: Shard | None = None
    dry_run_path: str | None = None  # write the request bodies here instead of sending
    report_path: str | None = None  # write the JSON report here
    pushdown: bool = True  # let the engine build the records where the output supports it
    session: SessionContext = field(default_factory=SessionContext)


class ExportObserver:
    """What a caller sees of a run while it goes; every method is optional."""

    def started(self, report: JobReport) -> None:
        """The run is configured and about to read; `report` is live from now on."""

    def warning(self, message: str) -> None:
        """A warning (already redacted), as it happens."""

    def finished(self, report: JobReport) -> None:
        """The run ended; the report is final (and written, if asked)."""


def check_writable(option: str, path: str | None) -> None:
    """Fail before the query runs, not after every event was sent."""
    if path is None:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK) or Path(path).is_dir():
        raise ConfigError(f"{option}: cannot write {path} (does its folder exist?)")


def write_report(path: str, report: JobReport) -> None:
    text = report.redact(report.to_json().decode())
    Path(path).write_text(text + "\n", encoding="utf-8")


def run_export(spec: ExportSpec, cancel: CancelToken | None = None,
               observer: ExportObserver | None = None) -> JobReport:
    """Run one export to the end, or until `cancel` is tripped.

    Raises ConfigError (its message redacted) for a configuration problem found before the run
    starts. Everything after that ends in the returned report, whose reason is `config_error`
    for a problem found once the query's columns are known.
    """
    cancel = cancel or CancelToken()
    observer = observer or ExportObserver()
    redactor = Redactor()
    try:
        check_writable("--report-file", spec.report_path)
        check_writable("--dry-run", spec.dry_run_path)
        sql = spec.query.strip().rstrip(";").strip()
        if not sql:
            raise ConfigError("the query is empty")
        plugin = result_url.build_output(spec.output, redactor)
        url = result_url.expand_env({"--database": database_url(spec.database_url)})["--database"]
        for secret in url_secrets(url):
            redactor.add(secret)
        source = Source(url, cancel=cancel)
        sql = spec.mapping.apply(sql, source.dialect)
        if spec.shard is not None:
            if plugin.shard_column is None:
                raise ConfigError(f"--shard: the {plugin.type} output has no shard key")
            sql = shard_sql(sql, source.dialect, spec.shard, plugin.shard_column)
    except ConfigError as exc:
        raise ConfigError(redactor(str(exc))) from None

    report = JobReport(output_type=plugin.type, destination=plugin.describe_destination(),
                       dry_run=spec.dry_run_path is not None, redact=redactor)
    report.sections.append(plugin.report_section)
    observer.started(report)
    job = ExportJob(plugin, source, report, cancel=cancel, dry_run_path=spec.dry_run_path,
                    on_warning=observer.warning, pushdown=spec.pushdown)
    try:
        job.run(sql)
    except ConfigError as exc:
        report.fail(ConfigError.reason, str(exc))
        report.finish()
    finally:
        source.dispose()
    if spec.report_path:
        write_report(spec.report_path, report)
    observer.finished(report)
    return report
