"""Notifications of scheduled runs, through real local servers: an SMTP server (aiosmtpd) that
demands STARTTLS and a login, an HTTP webhook receiver that fails once (so the notification is
retried), and a command. No token, password or secret URL appears in any message or log line,
and bad targets are refused when the schedule is saved (exit 2, the value never repeated).
"""
from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
import time
import email.policy
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connector.outputs.line_conversion.sandbox import run_sandbox
from connector.schedule import Schedule, ScheduleStore, export_definition
from connector.scheduler import Scheduler, SchedulerOptions, check_targets
from connector.scheduler.notify import FIELDS, RunEvent, notify
from helpers import TAG, TOKEN, ManualClock, result_config, run_connector, slot_query

SMTP_USER = "alerts"
SMTP_PASSWORD = "smtp-PASSWORD-9d2e71"  # read from the secrets store; must never be shown
HOOK_SECRET = "hook-path-SECRET-44c1"  # the webhook URL's secret path
HOOK_AUTH = "Bearer hook-AUTH-SECRET-7e0b"
SECRETS = (TOKEN, SMTP_PASSWORD, HOOK_SECRET, HOOK_AUTH)
HOUR = 3600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- local servers

class Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "content": envelope.content, "tls": session.ssl is not None,
                              "login": session.authenticated})
        return "250 OK"


@pytest.fixture
def smtp(tmp_path) -> Iterator[dict[str, Any]]:
    """An SMTP server on loopback that refuses to go on without STARTTLS and a login."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    logins: list[tuple[str, bool]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
              and auth_data.password == SMTP_PASSWORD.encode())
        logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)  # handled=False: answer 535 on failure

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, auth_require_tls=True,
                            authenticator=authenticator)
    controller.start()
    try:
        yield {"port": port, "ca_file": str(ca_file), "mailbox": mailbox, "logins": logins}
    finally:
        controller.stop()


class Hooks:
    """Webhook requests received, and the statuses to answer (then 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()


@pytest.fixture
def webhook() -> Iterator[dict[str, Any]]:
    hooks = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hooks.lock:
                hooks.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "body": body.decode()})
                status = hooks.answers.pop(0) if hooks.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "hooks": hooks}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stack_sandbox() -> Iterator[Any]:
    """Starts extra sandboxes for a test (stopped after it)."""
    with contextlib.ExitStack() as stack:
        yield lambda **kw: stack.enter_context(run_sandbox(**kw))


@pytest.fixture
def env(tmp_path, monkeypatch, sandbox):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("CONNECTOR_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    monkeypatch.setenv("CONNECTOR_SECRET_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("CONNECTOR_SECRET_HOOK_URL", "")  # set per test
    monkeypatch.setenv("CONNECTOR_SECRET_HOOK_AUTH", HOOK_AUTH)
    return {"url": f"sqlite:///{tmp_path / 'state.db'}", "path": tmp_path, "sandbox": sandbox}


def targets(smtp: dict[str, Any], tmp_path: Path, on: str) -> list[dict[str, Any]]:
    dump = ("import json, os, sys; open(sys.argv[1], 'a').write(json.dumps(dict(os.environ))"
            " + '\\n')")
    return [
        {"type": "command", "command": [sys.executable, "-c", dump, str(tmp_path / f"cmd-{on}")],
         "on": on},
        {"type": "webhook", "url": {"secret": "hook.url"},
         "headers": {"Authorization": "${secret:hook.auth}"}, "retries": 3, "retry_wait": 0.2,
         "on": on},
        {"type": "email", "to": ["ops@example.com", "oncall@example.com"],
         "from": "connector@example.com", "host": "127.0.0.1", "port": smtp["port"],
         "starttls": True, "user": SMTP_USER, "password": "${secret:smtp.password}",
         "ca_file": smtp["ca_file"], "on": on},
    ]


def test_failure_and_success_are_told_by_command_webhook_and_email(env, smtp, webhook,
                                                                   monkeypatch, caplog,
                                                                   stack_sandbox):
    caplog.set_level(logging.INFO, logger="connector.scheduler")
    sandbox, tmp_path = env["sandbox"], env["path"]
    monkeypatch.setenv("CONNECTOR_SECRET_HOOK_URL", f"{webhook['url']}/hook/{HOOK_SECRET}")
    clock = ManualClock(time.time() // HOUR * HOUR - 10 * HOUR + 600)
    store = ScheduleStore(env["url"], clock=clock)
    # "fails" sends to an API that knows another token for the tag: it answers 401.
    strict = stack_sandbox(tags={TAG: "another-token"})
    outputs = {"fails": result_config(strict), "works": result_config(sandbox)}
    quiet = tmp_path / "quiet"
    for name, on in (("fails", "failure"), ("works", "always")):
        told = targets(smtp, tmp_path, on)
        if name == "works":  # a failure-only target, which a success must not reach
            told.append({"type": "command", "command": f"touch {quiet}"})
        store.create(Schedule(name=name, cron="0 * * * *", notify=tuple(told),
                              definition=export_definition(slot_query(2, name), outputs[name],
                                                           None)))
    scheduler = Scheduler(store, SchedulerOptions(), clock)
    slot = clock.t // HOUR * HOUR + HOUR
    clock.t = slot + 5
    webhook["hooks"].answers = [500]  # the first notification is retried
    scheduler.run_until_idle()
    records = {name: store.history(name)[0] for name in ("fails", "works")}
    assert (records["fails"].status, records["works"].status) == ("error", "success"), records

    hooks = webhook["hooks"].requests
    # "fails": 500, then 200 on the resend; "works": 200 (the two may come in either order)
    assert [h["path"] for h in hooks] == [f"/hook/{HOOK_SECRET}"] * 3
    assert all(h["headers"]["Authorization"] == HOOK_AUTH for h in hooks)
    bodies = [json.loads(h["body"]) for h in hooks]
    fail_body = next(b for b in bodies if b["schedule"] == "fails")
    assert set(fail_body) == {"text"} | {f.name for f in FIELDS}
    assert fail_body["status"] == "error" and fail_body["attempt"] == 1
    assert fail_body["scheduled_time"].startswith(
        time.strftime("%Y-%m-%dT%H:00:00", time.gmtime(slot)))
    assert "failed" in fail_body["text"] and fail_body["report_path"]
    works_body = next(b for b in bodies if b["schedule"] == "works")
    assert works_body["status"] == "success" and works_body["events_sent"] == 2
    assert bodies.count(fail_body) + bodies.count(works_body) == 3
    assert webhook["hooks"].answers == []  # the 500 was answered, then the resend got 200

    mails = smtp["mailbox"].messages
    assert len(mails) == 2 and all(m["tls"] and m["login"] for m in mails)
    assert smtp["logins"] and all(ok for _, ok in smtp["logins"])
    fail_mail = next(message_from_bytes(m["content"], policy=email.policy.default) for m in mails
                     if b"fails" in m["content"].split(b"\n\n", 1)[0])
    assert fail_mail["Subject"] == f"connector schedule fails: error for {fail_body['scheduled_time']}"
    assert sorted(mails[0]["to"]) == ["oncall@example.com", "ops@example.com"]
    body = fail_mail.get_content()
    for field in FIELDS:
        assert f"\n{field.name}: " in body

    fail_env = json.loads((tmp_path / "cmd-failure").read_text().splitlines()[0])
    assert fail_env["CONNECTOR_SCHEDULE"] == "fails" and fail_env["CONNECTOR_STATUS"] == "error"
    assert fail_env["CONNECTOR_REPORT_PATH"] == records["fails"].report_path
    assert fail_env["CONNECTOR_SCHEDULED_TIME"] == fail_body["scheduled_time"]
    # The command does not inherit what the schedule reads its secrets from.
    assert "TEST_LINE_TOKEN" not in fail_env and not any(
        k.startswith("CONNECTOR_SECRET_") for k in fail_env)
    works_env = json.loads((tmp_path / "cmd-always").read_text().splitlines()[0])
    assert works_env["CONNECTOR_STATUS"] == "success" and works_env["CONNECTOR_EVENTS_SENT"] == "2"
    assert not quiet.exists()  # a failure-only target is not told of a success

    # What the notifications said (the webhook's Authorization header carries its own secret
    # on purpose) and what the scheduler logged.
    everything = json.dumps([h["body"] for h in hooks]) + "".join(m["content"].decode() for m in mails) + \
        (tmp_path / "cmd-failure").read_text() + (tmp_path / "cmd-always").read_text() + \
        caplog.text
    for secret in (TOKEN, SMTP_PASSWORD, HOOK_AUTH):
        assert secret not in everything, secret[:5]
    assert HOOK_SECRET not in caplog.text  # the log names the webhook's host, not its path
    assert "notify fails: target 2 (webhook) told: http://127.0.0.1:" in caplog.text
    store.close()


def test_a_failing_target_is_logged_and_the_others_are_still_told(tmp_path, caplog, smtp):
    caplog.set_level(logging.INFO, logger="connector.scheduler")
    closed = free_port()
    event = RunEvent({"schedule": "s", "status": "error", "reason": "source_error",
                      "error": "boom", "scheduled_time": "2026-03-01T00:00:00+00:00"})
    out = tmp_path / "told"
    failures = notify([
        {"type": "webhook", "url": f"http://127.0.0.1:{closed}/x?token={HOOK_SECRET}",
         "retries": 2, "retry_wait": 0.05},
        {"type": "email", "to": "ops@example.com", "from": "c@example.com", "host": "127.0.0.1",
         "port": smtp["port"], "user": SMTP_USER, "password": {"env": "WRONG_PASSWORD"},
         "ca_file": smtp["ca_file"]},
        {"type": "command", "command": ["false"]},
        {"type": "command", "command": f"echo told > {out}"},
    ], event, hidden=set())
    assert len(failures) == 3
    assert "ConnectError" in failures[0] and "after 3 attempts" in failures[0]
    assert "WRONG_PASSWORD is not set" in failures[1]
    assert "exited with status 1" in failures[2]
    assert out.read_text().strip() == "told"
    assert HOOK_SECRET not in caplog.text and "target 1 (webhook) failed" in caplog.text


def test_a_wrong_smtp_password_is_refused_without_showing_it(smtp, monkeypatch):
    monkeypatch.setenv("SMTP_PW", "wrong-PASSWORD-5a5a")
    event = RunEvent({"schedule": "s", "status": "error"})
    failures = notify([{"type": "email", "to": "ops@example.com", "from": "c@example.com",
                        "host": "127.0.0.1", "port": smtp["port"], "user": SMTP_USER,
                        "password": "${SMTP_PW}", "ca_file": smtp["ca_file"]}], event, set())
    assert len(failures) == 1 and "SMTPAuthenticationError" in failures[0]
    assert "wrong-PASSWORD" not in failures[0]
    assert smtp["mailbox"].messages == []


def test_without_the_private_ca_the_server_certificate_is_refused(smtp):
    event = RunEvent({"schedule": "s", "status": "error"})
    failures = notify([{"type": "email", "to": "ops@example.com", "from": "c@example.com",
                        "host": "127.0.0.1", "port": smtp["port"]}], event, set())
    assert len(failures) == 1 and "SSLCertVerificationError" in failures[0]
    assert smtp["mailbox"].messages == []


@pytest.mark.parametrize("target,message", [
    ({"type": "webhook", "url": "http://hooks.example.com/x"}, "plain http is allowed only"),
    ({"type": "webhook", "url": "ftp://127.0.0.1/x"}, "not an http(s) URL"),
    ({"type": "webhook", "url": "https://h.example.com", "headers": {"X-Key": "k-LITERAL-1"}},
     "give a secret reference"),
    ({"type": "email", "to": "a@example.com", "from": "b@example.com", "host": "smtp.example.com",
      "user": "u", "password": "p-LITERAL-2"}, "give a secret reference"),
    ({"type": "email", "to": "a@example.com", "from": "b@example.com", "host": "smtp.example.com",
      "user": "u"}, "user needs a password"),
    ({"type": "email", "to": "a@example.com", "from": "b@example.com", "host": "smtp.example.com",
      "starttls": False}, "only for a loopback SMTP server"),
    ({"type": "email", "to": "not-an-address", "from": "b@example.com", "host": "h"},
     "to is not an email address"),
    ({"type": "command", "command": "true", "bogus": 1}, "unknown key 'bogus'"),
    ({"type": "command", "command": "true", "on": "sometimes"}, "on: not valid"),
    ({"type": "pager"}, "type must be one of command, webhook, email"),
    ({"type": "webhook"}, "'url' is required"),
    ("not an object", "type must be one of"),
])
def test_bad_targets_are_refused_without_repeating_values(target, message):
    from connector.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        check_targets([target])
    assert message in str(err.value)
    for literal in ("k-LITERAL-1", "p-LITERAL-2", "hooks.example.com/x", "sometimes"):
        assert literal not in str(err.value)


def test_schedule_create_checks_and_show_hides_the_targets(env, tmp_path):
    query = tmp_path / "q.sql"
    query.write_text(slot_query(1, "n"))
    base = ["--state", env["url"], "--cron", "@hourly", str(query),
            "--result", json.dumps(result_config(env["sandbox"]))]
    good = [{"type": "webhook", "url": "https://hooks.example.com/services/T0/B0/SECRETPATH"},
            {"type": "email", "to": "ops@example.com", "from": "c@example.com",
             "host": "smtp.example.com", "user": "u", "password": {"secret": "smtp.password"},
             "on": "always"},
            {"type": "command", "command": ["/usr/local/bin/page-me", "--token", "CMDSECRET"]}]
    (tmp_path / "notify.json").write_text(json.dumps(good))
    made = run_connector(tmp_path, "schedule", "create", "n", *base, "--notify",
                         f"@{tmp_path / 'notify.json'}")
    assert made.returncode == 0, made.stderr
    shown = run_connector(tmp_path, "schedule", "show", "n", "--state", env["url"])
    assert "webhook to https://hooks.example.com (on failure)" in shown.stdout
    assert "email to 1 recipient via smtp.example.com (on always)" in shown.stdout
    assert "command /usr/local/bin/page-me ... (on failure)" in shown.stdout
    for hidden in ("SECRETPATH", "CMDSECRET", "smtp.password"):
        assert hidden not in shown.stdout + shown.stderr
    store = ScheduleStore(env["url"])
    assert [t["type"] for t in store.get("n").notify] == ["webhook", "email", "command"]
    store.close()

    bad = run_connector(tmp_path, "schedule", "update", "n", "--state", env["url"], "--notify",
                        json.dumps({"type": "email", "to": "a@example.com", "from": "b@example.com",
                                    "host": "h", "user": "u", "password": "pw-IN-CLEAR-1"}))
    assert bad.returncode == 2 and "give a secret reference" in bad.stderr
    assert "pw-IN-CLEAR-1" not in bad.stderr and "Traceback" not in bad.stderr
    broken = run_connector(tmp_path, "schedule", "update", "n", "--state", env["url"],
                           "--notify", '{"type": "webhook", "url": "https://x.example.com/tok-12')
    assert broken.returncode == 2 and "not valid JSON (line 1, column" in broken.stderr
    assert "tok-12" not in broken.stderr
    cleared = run_connector(tmp_path, "schedule", "update", "n", "--state", env["url"],
                            "--notify", "[]")
    assert cleared.returncode == 0
    store = ScheduleStore(env["url"])
    assert tuple(store.get("n").notify) == ()
    store.close()


def test_a_command_does_not_inherit_the_variables_a_saved_connection_reads(env, tmp_path,
                                                                           monkeypatch):
    from connector.scheduler.service import hidden_names

    monkeypatch.setenv("LINE_PROD_TOKEN", TOKEN)
    added = run_connector(tmp_path, "connections", "add", "prod", "--type", "line_conversion",
                          "--set", f"line_tag_id={TAG}", "--secret",
                          "access_token=env:LINE_PROD_TOKEN",
                          env={"CONNECTOR_CONFIG_HOME": str(tmp_path / "config")})
    assert added.returncode == 0, added.stderr
    schedule = Schedule(name="c", cron="@daily", notify=(
        {"type": "webhook", "url": "${HOOK_URL}"},), definition=export_definition(
            "SELECT 1", {"endpoint": "${ENDPOINT}"}, None, connection="prod"))
    hidden = hidden_names(schedule)
    assert {"LINE_PROD_TOKEN", "HOOK_URL", "ENDPOINT"} <= hidden
    from connector.scheduler.notify import command_environment

    assert "LINE_PROD_TOKEN" not in command_environment(hidden)
