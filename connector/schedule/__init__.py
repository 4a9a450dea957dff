"""Scheduled exports: Treasure Data's cron dialect (cron.py), a schedule's time zone (zones.py),
the state database (state.py, Alembic migrations in migrations/), schedules and their history
(store.py), and running slots through `connector.run_export` (runner.py).

Sits above `connector.api` and below `connector.cli`; the scheduler service builds on it."""
from .cron import Cron, CronError, next_runs, parse
from .runner import SlotOutcome, export_definition, export_spec, run_slot
from .state import default_state_url, state_url
from .store import AlreadyClaimed, RunRecord, Schedule, ScheduleStore

__all__ = ["AlreadyClaimed", "Cron", "CronError", "RunRecord", "Schedule", "ScheduleStore",
           "SlotOutcome", "default_state_url", "export_definition", "export_spec", "next_runs",
           "parse", "run_slot", "state_url"]
