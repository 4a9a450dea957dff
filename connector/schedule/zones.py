"""A schedule's time zone: an IANA name (Asia/Tokyo), or UTC.

Abbreviations and legacy aliases (JST, PST, EST, PST8PDT, US/Pacific, Japan) are refused:
several of them name fixed offsets that never observe daylight saving (EST), others are
ambiguous across countries (CST, IST), and the tz database keeps the rest only for old
configurations. (TD's time functions inside a query accept abbreviations, as TD's do.)
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from connector.errors import ConfigError
from connector.source.tdtime import ZONE_ABBREVIATIONS

# The areas of the tz database's canonical names (Area/Location), and Etc for fixed offsets.
AREAS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe",
         "Indian", "Pacific", "Etc")
DEFAULT_TIMEZONE = "UTC"


@lru_cache(maxsize=1)
def iana_names() -> frozenset[str]:
    return frozenset(n for n in available_timezones() if n.split("/", 1)[0] in AREAS) | {"UTC"}


def check_timezone(name: str, option: str = "--timezone") -> ZoneInfo | dt.timezone:
    """The zone `name` names (ConfigError for anything but an IANA name)."""
    if name in iana_names():
        return dt.timezone.utc if name == "UTC" else ZoneInfo(name)
    suggestion = ZONE_ABBREVIATIONS.get(name.upper(), "")
    hint = f" (for example {suggestion})" if "/" in suggestion and "Etc/" not in suggestion else ""
    known = name.upper() in ZONE_ABBREVIATIONS or name in available_timezones()
    kind = "an abbreviation or a legacy alias" if known else "not a time zone"
    raise ConfigError(f"{option}: {name!r} is {kind}; use an IANA time zone name such as "
                      f"{suggestion if hint else 'Asia/Tokyo'}")
