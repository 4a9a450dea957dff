"""What a schedule does when slots pile up, declared once (the store checks it, the command line
offers it, the scheduler service applies it, the docs list it).

- catch-up, after the service was down: `latest` runs only the most recent missed slot, `all`
  runs every missed slot in order (at most `catchup_limit`, the newest), `none` runs none;
- overlap, a slot due while the schedule's previous run is still going: `wait` runs it when that
  run ends, `skip` records it as skipped.
"""
from __future__ import annotations

from connector.errors import ConfigError

CATCHUP = ("latest", "all", "none")
OVERLAP = ("wait", "skip")
DEFAULT_CATCHUP = "latest"
DEFAULT_CATCHUP_LIMIT = 24
DEFAULT_OVERLAP = "wait"
MAX_CATCHUP_LIMIT = 1000


def check_policy(catchup: str, catchup_limit: int, overlap: str) -> None:
    if catchup not in CATCHUP:
        raise ConfigError(f"--catchup: {catchup!r} is not one of {', '.join(CATCHUP)}")
    if not 1 <= catchup_limit <= MAX_CATCHUP_LIMIT:
        raise ConfigError(f"--catchup-limit: {catchup_limit} is not between 1 and "
                          f"{MAX_CATCHUP_LIMIT}")
    if overlap not in OVERLAP:
        raise ConfigError(f"--overlap: {overlap!r} is not one of {', '.join(OVERLAP)}")
