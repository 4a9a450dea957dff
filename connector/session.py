"""The time a run is for, and what queries and templates read from it.

A scheduled run carries its slot's time; any other run is for the moment it starts (or the time
`--scheduled-time` pins). Queries read this value through TD_SCHEDULED_TIME() and the session
variables, never the clock, so a backfill of a past slot selects exactly what the slot itself
would have. The variables carry digdag's names and formats, so the workflow runner shares them.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.errors import ConfigError

_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def zone(name: str) -> dt.tzinfo:
    """An IANA zone, UTC, or a fixed offset written +HH:MM."""
    m = _OFFSET.match(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    if name == "UTC":
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class SessionContext:
    """The time a run is for. `scheduled_time` None means the start of the run."""

    scheduled_time: dt.datetime | None = None  # aware
    timezone: str = "UTC"  # an IANA name, UTC, or +HH:MM: where the session variables are local
    # A run of something with a schedule (a workflow's `schedule:`): the slots before and
    # after this one, for digdag's last_session_* and next_session_* variables.
    last_time: dt.datetime | None = None
    next_time: dt.datetime | None = None

    def resolved(self) -> "SessionContext":
        """This session with its time fixed (the current second when it had none)."""
        if self.scheduled_time is not None:
            return self
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        return replace(self, scheduled_time=now)

    @property
    def unixtime(self) -> int:
        """TD_SCHEDULED_TIME(): the session's time in UNIX seconds."""
        moment = self.resolved().scheduled_time
        assert moment is not None
        return int(moment.timestamp())

    def local_time(self) -> dt.datetime:
        moment = self.resolved().scheduled_time
        assert moment is not None
        return moment.astimezone(zone(self.timezone))

    def variables(self) -> dict[str, str]:
        """The session variables, with digdag's names and formats (as text)."""
        return {k: str(v) for k, v in self.parameters().items()}

    def parameters(self) -> dict[str, Any]:
        """The session variables as digdag's templates see them: `*_unixtime` are numbers, the
        rest text. `last_session_*` and `next_session_*` exist only for a scheduled run."""
        moment = self.resolved().scheduled_time
        assert moment is not None
        out: dict[str, Any] = {"timezone": self.timezone}
        for prefix, when in (("session_", moment), ("last_session_", self.last_time),
                             ("next_session_", self.next_time)):
            if when is not None:
                out.update(_time_variables(prefix, when.astimezone(zone(self.timezone))))
        return out


def _time_variables(prefix: str, local: dt.datetime) -> dict[str, Any]:
    """digdag's set of variables for one moment, local to the session's zone."""
    return {
        f"{prefix}time": local.isoformat(timespec="seconds"),
        f"{prefix}date": local.strftime("%Y-%m-%d"),
        f"{prefix}date_compact": local.strftime("%Y%m%d"),
        f"{prefix}local_time": local.strftime("%Y-%m-%d %H:%M:%S"),
        f"{prefix}tz_offset": local.strftime("%z"),
        f"{prefix}unixtime": int(local.timestamp()),
    }


_VARIABLE = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def render(text: str, variables: Mapping[str, str]) -> str:
    """`text` with each ${name} of a known variable replaced by its value; anything else, such
    as ${NAME} of an environment variable, stays as written."""
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


def iso_error(option: str, text: str) -> str:
    return f"{option}: {text!r} is not an ISO 8601 time (for example 2026-12-07T00:00:00+09:00)"


def parse_moment(text: str, tz: dt.tzinfo, error: str) -> dt.datetime:
    """An ISO 8601 time (`Z` for UTC; without an offset, a wall time in `tz`); ConfigError
    with `error` when `text` is not one."""
    raw = text.strip()
    iso = raw[:-1] + "+00:00" if raw[-1:] in ("Z", "z") else raw
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise ConfigError(error) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def parse_scheduled_time(text: str, option: str = "--scheduled-time") -> SessionContext:
    """A session pinned to an ISO 8601 time (`2026-12-07T00:00:00+09:00`, `2026-12-07`, a time
    without an offset is UTC) or to UNIX seconds. The variables are local to its offset."""
    raw = text.strip()
    if re.fullmatch(r"-?\d{9,}", raw):
        return SessionContext(dt.datetime.fromtimestamp(int(raw), dt.timezone.utc))
    moment = parse_moment(raw, dt.timezone.utc, iso_error(option, text))
    offset = moment.utcoffset() or dt.timedelta(0)
    name = "UTC" if not offset else _offset_name(offset)
    return SessionContext(moment.replace(microsecond=0), name)


def _offset_name(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
