"""The scheduler service: starts each schedule's due slots through the schedule package's
runner, on one machine (SQLite) or several sharing a PostgreSQL state database.

- `service.py`: `Scheduler` (the loop, workers, leases, the SIGTERM grace period);
- `catchup.py`: which due slots run (catch-up `latest`/`all`/`none`, overlap `wait`/`skip`);
- `notify.py`: a command, an HTTP webhook, an email, on failure (or always);
- `dashboard.py` with `static/`: the read-only dashboard and `/metrics`.

Sits above `connector.schedule` and below `connector.cli`.
"""
from .catchup import Decision, decide
from .dashboard import serve_dashboard
from .notify import RunEvent, check_targets
from .service import RealClock, Scheduler, SchedulerOptions

__all__ = ["Decision", "RealClock", "RunEvent", "Scheduler", "SchedulerOptions", "check_targets",
           "decide", "serve_dashboard"]
