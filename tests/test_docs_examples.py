"""Every example the docs mark with `<!-- example: NAME -->` runs as written.

The fenced block right after the marker is run from the repository's root in a fresh Python
process (against the local sandbox the example starts itself), so the documentation cannot drift
from the code.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for name, code in _EXAMPLE.findall(page.read_text(encoding="utf-8")):
            found.append((f"{page.name}:{name}", code))
    return found


def test_the_docs_have_examples():
    assert _examples(), "no <!-- example: NAME --> blocks found"


@pytest.mark.parametrize("name,code", _examples(), ids=[n for n, _ in _examples()])
def test_example_runs(name, code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "LINE_TOKEN": "example-token"}
    env.pop("CONNECTOR_DATABASE_URL", None)
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
