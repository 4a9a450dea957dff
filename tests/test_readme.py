"""The docs' generated tables match the declarations, and the README's commands exist."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from connector.cli.docs import generated_sections, render_into

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"
CI_RUN = Path(__file__).resolve().parents[1] / ".ci" / "run"


def test_generated_tables_are_current():
    """Every generated table is in the docs, between its markers, and current."""
    pages = [README, *sorted(DOCS.glob("*.md"))]
    for page in pages:
        text = page.read_text()
        assert render_into(text) == text, f"run: python -m connector docs --write {page}"
    everything = "".join(page.read_text() for page in pages)
    for key in generated_sections():
        assert f"<!-- BEGIN generated {key} -->" in everything, key


def test_ci_runs_the_readme_test_command():
    text = README.read_text()
    assert "\n    python -m pytest\n" in text
    assert CI_RUN.read_text().rstrip().splitlines()[-1] == "python -m pytest"


def test_help_of_every_command():
    for args in ([], ["sandbox"], ["outputs"], ["demo"], ["docs"], ["scheduler"]):
        proc = subprocess.run([sys.executable, "-m", "connector", *args, "--help"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "usage:" in proc.stdout


def test_readme_demo_command(tmp_path):
    """The README's first command (after the install): a full export of the examples."""
    import json

    report = tmp_path / "demo-report.json"
    proc = subprocess.run([sys.executable, "-m", "connector", "demo", "--report-file", str(report)],
                          capture_output=True, text=True, timeout=120, cwd=README.parent)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(report.read_text())
    assert r["status"] == "success" and r["rows_read"] == 1000
    assert r["events_sent"] + r["invalid_records"] == 1000 and 0 < r["invalid_records"] < 100
    assert f"stored {r['events_sent']} events" in proc.stderr
