"""Where plain http is allowed: loopback hosts only (127.0.0.0/8, ::1, localhost). Everything
else is https, so a token, a password or a payload never crosses a network in clear text."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from connector.errors import ConfigError


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_https(key: str, url: str) -> str:
    """`url` if it is https, or http to a loopback host; ConfigError naming `key` otherwise.
    The message never repeats the URL (it may carry a token in its path or query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ConfigError(f"{key}: not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{key}: not an http(s) URL with a host")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(f"{key}: plain http is allowed only for loopback hosts (127.0.0.1, ::1, "
                          "localhost); use https")
    return url
