"""Find the local Trino test server started by `.ci/trino.sh start` (stdlib only)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

DEFAULT_PORT = 18080


def trino_port() -> int:
    return int(os.environ.get("TRINO_PORT") or DEFAULT_PORT)


def trino_url(timeout: float = 2.0) -> str | None:
    """SQLAlchemy URL of the local Trino server if it is up and ready, else None.

    Ready means `GET /v1/info` answers with `"starting": false`.
    """
    port = trino_port()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=timeout) as resp:
            info = json.load(resp)
    except (OSError, ValueError):  # URLError, refused, timeout, bad JSON
        return None
    if not isinstance(info, dict) or info.get("starting") is not False:
        return None
    return f"trino://test@127.0.0.1:{port}/memory/default"
