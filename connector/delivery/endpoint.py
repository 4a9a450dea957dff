"""The base URL of an HTTP API, checked completely when the configuration is read.

A URL that passes is one the delivery sends to as it is: `http` or `https`, a host, an optional
port from 1 to 65535, an optional path prefix, and nothing else. Credentials (`user:password@`)
are refused, because they would travel in every request and show in every log line that names
the destination; so are a query string and a fragment, which would move the request to another
path. Messages never repeat the URL: it may hold a password.
"""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from connector.errors import ConfigError

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)"
                  r"(?P<path>[^?#]*)(?P<query>\?[^#]*)?(?P<fragment>#.*)?", re.S)
_BRACKETED = re.compile(r"\[(?P<host>[^\]]*)\](?::(?P<port>.*))?", re.S)
_PLAIN = re.compile(r"(?P<host>[^:]*)(?::(?P<port>.*))?", re.S)
# Host names: dot-separated labels of letters, digits and inner hyphens (underscores too, which
# container and service names use), at most 253 characters; an optional final dot.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")
# RFC 3986 path characters without `@`: unreserved, sub-delims, `:`, `/`, and %XX escapes.
_PATH = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:/-]|%[0-9A-Fa-f]{2})*\Z")
SCHEMES = ("http", "https")
MAX_PORT = 65535
MAX_LENGTH = 2048  # the practical limit of URLs across servers and proxies


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_host(host: str, bracketed: bool, option: str) -> None:
    if not host:
        raise ConfigError(f"{option}: has no host (write it as https://host[:port][/path])")
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{option}: the host in brackets is not an IPv6 address") from None
        return
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ConfigError(f"{option}: the host is not a valid host name or address (letters, "
                          "digits, hyphens and dots; an international name in its xn-- form)")
    if all(label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise ConfigError(f"{option}: the host is not a valid IPv4 address") from None


def _check_port(port: str | None, option: str) -> None:
    if port is None:
        return
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= MAX_PORT:
        raise ConfigError(f"{option}: the port must be a number from 1 to {MAX_PORT}")


def check_base_url(url: str, option: str = "endpoint") -> None:
    """Raise ConfigError (naming `option`, never repeating the URL) unless `url` is
    `http(s)://host[:port][/path]`; plain `http` only for loopback hosts."""
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ConfigError(f"{option}: must be plain ASCII without spaces (percent-encode other "
                          "characters; an international host name in its xn-- form)")
    if len(url) > MAX_LENGTH:
        raise ConfigError(f"{option}: longer than {MAX_LENGTH} characters")
    m = _URL.fullmatch(url)
    if m is None or m["scheme"].lower() not in SCHEMES:
        raise ConfigError(f"{option}: must be an http or https URL, such as "
                          "https://host[:port][/path]")
    authority = m["authority"]
    if "@" in authority:
        raise ConfigError(f"{option}: must not contain credentials (user:password@); the "
                          "output's token has a parameter of its own")
    parts = (_BRACKETED if authority.startswith("[") else _PLAIN).fullmatch(authority)
    if parts is None:
        raise ConfigError(f"{option}: write an IPv6 host in brackets, e.g. http://[::1]:8080")
    _check_host(parts["host"], authority.startswith("["), option)
    _check_port(parts["port"], option)
    if not _PATH.match(m["path"]):
        raise ConfigError(f"{option}: the path may hold only letters, digits, / and "
                          "-._~!$&'()*+,;=: (percent-encode anything else)")
    if m["query"] is not None:
        raise ConfigError(f"{option}: must not have a query string (?...): the requests' path "
                          "is built from it")
    if m["fragment"] is not None:
        raise ConfigError(f"{option}: must not have a fragment (#...)")
    if m["scheme"].lower() == "http" and not is_loopback_host(parts["host"]):
        raise ConfigError(f"{option}: plain http is allowed only for loopback hosts (127.0.0.1, "
                          "::1, localhost); use https")


def check_https(key: str, url: str) -> str:
    """`url` if it is https, or http to a loopback host; ConfigError naming `key` otherwise.
    Unlike an API's base URL, a path and a query are allowed (a webhook's secret often lives
    there). The message never repeats the URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ConfigError(f"{key}: not a URL") from None
    if parts.scheme not in SCHEMES or not host:
        raise ConfigError(f"{key}: not an http(s) URL with a host")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(f"{key}: plain http is allowed only for loopback hosts (127.0.0.1, ::1, "
                          "localhost); use https")
    return url
