"""`${...}` in workflow files: JavaScript, evaluated in an embedded V8 (mini-racer), with the
rules Treasure Workflow applies (js/template.js) and `moment` (js/moment.js).

One engine serves a whole run; calls are serialised by a lock (a template is microseconds of
work, the tasks around it are queries). `close()` must be called: V8 keeps a thread that would
otherwise hold the process open at exit.
"""
from __future__ import annotations

import copy
import json
import threading
from importlib import resources
from typing import Any, Mapping

from .errors import TaskFailed

# Keys whose values are task definitions, evaluated when those tasks run, not before.
NOT_EVALUATED = frozenset({"_do", "_else_do"})
TIMEOUT_SECONDS = 10.0
MEMORY_BYTES = 256 * 1024 * 1024


def _script(name: str) -> str:
    return resources.files("connector.workflow").joinpath("js", name).read_text(encoding="utf-8")


class ExpressionError(TaskFailed):
    """A `${...}` could not be evaluated."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="config_error")


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class Evaluator:
    """A V8 context with the template function and moment loaded."""

    def __init__(self) -> None:
        from py_mini_racer import MiniRacer  # imported here: loading V8 takes a moment

        self._lock = threading.Lock()
        self._ctx: Any = MiniRacer()
        self._ctx.eval(_script("moment.js"))
        self._ctx.eval(_script("template.js"))
        self._closed = False

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._ctx.close()

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, name: str, *args: Any) -> Any:
        from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException

        try:
            return self._ctx.call(name, *args, timeout_sec=TIMEOUT_SECONDS,
                                  max_memory=MEMORY_BYTES)
        except JSTimeoutException:
            raise ExpressionError(f"an expression ran longer than {TIMEOUT_SECONDS:g}s") from None
        except JSOOMException:
            raise ExpressionError("an expression used too much memory") from None
        except JSEvalException as exc:
            raise ExpressionError(f"expression error: {_short(str(exc).splitlines()[0])}") from None

    def _set_params(self, params: Mapping[str, Any]) -> None:
        self._call("__connector.setParams", _json(params))

    def _template(self, text: str, local: Mapping[str, Any] | None) -> str:
        result = self._call("__connector.template", text, _json(local) if local else "")
        if "error" in result:
            raise ExpressionError(f"${{{_short(result['expr'])}}}: {result['error']}")
        return str(result["ok"])

    def template(self, text: str, params: Mapping[str, Any]) -> str:
        """`text` (a query file, a message) with its expressions evaluated."""
        if "$" not in text:
            return text
        with self._lock:
            self._set_params(params)
            return self._template(text, None)

    def evaluate(self, config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """Every string in `config` templated, as digdag evaluates a task's configuration: the
        scope is `params` plus the keys of the same mapping evaluated before; `_do` and
        `_else_do` stay as written."""
        with self._lock:
            self._set_params(params)
            return self._object(config)

    def _object(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        built: dict[str, Any] = {}
        for key, value in obj.items():
            if key in NOT_EVALUATED:
                built[key] = copy.deepcopy(value)
            elif isinstance(value, Mapping):
                built[key] = self._object(value)
            elif isinstance(value, list):
                built[key] = self._array(value, built)
            elif isinstance(value, str):
                built[key] = self._template(value, built) if "$" in value else value
            else:
                built[key] = value
        return built

    def _array(self, items: list[Any], local: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        for value in items:
            if isinstance(value, Mapping):
                out.append(self._object(value))
            elif isinstance(value, list):
                out.append(self._array(value, local))
            elif isinstance(value, str):
                out.append(self._template(value, local) if "$" in value else value)
            else:
                out.append(value)
        return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
