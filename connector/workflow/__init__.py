"""Treasure Workflow (.dig) files, run locally against the configured engine, exporting through
`run_export`.

    workflow = load_workflow("export.dig", params)           # everything refused is refused here
    result = run_workflow(WorkflowSpec("export.dig", params, session), cancel, observer)

Sits above `connector.api` and below `connector.schedule` (a schedule's slot can run a workflow)
and `connector.cli`.
"""
from .definition import Workflow
from .load import load_workflow
from .errors import TaskFailed, WorkflowError
from .report import TaskRecord, WorkflowObserver, WorkflowResult, last_session
from .runner import DEFAULT_MAX_PARALLEL, WorkflowSpec, default_runs_dir, run_workflow
from .schedule_block import ScheduleBlock, parse_schedule

__all__ = ["DEFAULT_MAX_PARALLEL", "ScheduleBlock", "TaskFailed", "TaskRecord", "Workflow",
           "WorkflowError", "WorkflowObserver", "WorkflowResult", "WorkflowSpec",
           "default_runs_dir", "last_session", "load_workflow", "parse_schedule", "run_workflow"]
