"""The one way to run an export: an ExportSpec in, a JobReport out.

The command line, `connector demo`, and later the scheduler and the workflow runner all call
`run_export`; nothing builds an argument list to call the CLI.

    from connector import ExportSpec, run_export
    report = run_export(ExportSpec(query="SELECT ... FROM 'events.csv'",
                                   output={"type": "line_conversion", ...}))
"""
from __future__ import annotations

import json
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
from connector.session import SessionContext, render
from connector.source import Shard, Source, database_url, shard_sql, url_secrets

__all__ = ["ExportObserver", "ExportSpec", "SessionContext", "run_export"]


@dataclass(frozen=True)
class ExportSpec:
    """Everything one export needs, as a value: it can be stored, scheduled and run again."""

    query: str
    # The output configuration (the --result object), or with `connection` the settings
    # layered over that saved connection. ${NAME}, ${secret:KEY} and the connection's secret
    # references are read when the run starts, so a stored spec picks up a rotated token.
    output: Mapping[str, Any] = field(default_factory=dict)
    connection: str | None = None  # the name of a saved connection (connector connections)
    database_url: str | None = None  # None: $CONNECTOR_DATABASE_URL, else the embedded DuckDB
    # The schema unqualified table names are looked up in (a workflow task's `database`);
    # None: the engine's default (DuckDB's main, the schema in a Trino URL).
    schema: str | None = None
    mapping: OutputMapping = field(default_factory=OutputMapping)
    shard: Shard | None = None
    dry_run_path: str | None = None  # write the request bodies here instead of sending
    report_path: str | None = None  # write the JSON report here
    pushdown: bool = True  # let the engine build the records where the output supports it
    session: SessionContext = field(default_factory=SessionContext)  # the time the run is for


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
    text = report.redact(json.dumps(report.to_dict(), indent=2))
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
    warnings: list[str] = []  # found while configuring; shown once the report exists
    try:
        check_writable("--report-file", spec.report_path)
        check_writable("--dry-run", spec.dry_run_path)
        sql = spec.query.strip().rstrip(";").strip()
        if not sql:
            raise ConfigError("the query is empty")
        # The run's time is fixed once: TD_SCHEDULED_TIME() and ${session_*} read this value.
        session = spec.session.resolved()
        sql = render(sql, session.variables())
        plugin = result_url.build_output(spec.output, redactor, connection=spec.connection,
                                         warn=warnings.append)
        expander = result_url.Expander(redactor=redactor, warn=warnings.append)
        url = expander.text("--database", database_url(spec.database_url))
        for secret in url_secrets(url):
            redactor.add(secret)
        source = Source(url, cancel=cancel, scheduled_time=session.unixtime, schema=spec.schema)
        sql = spec.mapping.apply(sql, source.dialect)
        if spec.shard is not None:
            if plugin.shard_column is None:
                raise ConfigError(f"--shard: the {plugin.type} output has no shard key")
            sql = shard_sql(sql, source.dialect, spec.shard, plugin.shard_column)
    except ConfigError as exc:
        for message in warnings:
            observer.warning(redactor(message))
        raise ConfigError(redactor(str(exc))) from None

    report = JobReport(output_type=plugin.type, destination=plugin.describe_destination(),
                       dry_run=spec.dry_run_path is not None, redact=redactor)
    report.sections.append(plugin.report_section)
    observer.started(report)
    for message in warnings:
        observer.warning(report.warn(message))
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
