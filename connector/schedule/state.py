"""The state database: where schedules and their history live, reached through SQLAlchemy.

SQLite at `${XDG_STATE_HOME:-~/.local/state}/connector/state.db` by default; `--state URL` or
`$CONNECTOR_STATE_URL` picks another (PostgreSQL for several machines). The schema is created and
upgraded by Alembic migrations shipped in this package, run when the database is opened.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from connector.errors import ConfigError
from connector.source import safe_url

STATE_URL_ENV = "CONNECTOR_STATE_URL"
MIGRATIONS = Path(__file__).with_name("migrations")


def state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "connector"


def default_state_url() -> str:
    return f"sqlite:///{state_home() / 'state.db'}"


def state_url(option: str | None) -> str:
    return option or os.environ.get(STATE_URL_ENV) or default_state_url()


# The tables as the migrations leave them (the migrations are the truth; these mirror them).
metadata = sa.MetaData()
schedules = sa.Table(
    "schedules", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("cron", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("delay_seconds", sa.Integer, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # 0002: the scheduler service
    sa.Column("catchup", sa.String(10), nullable=False, server_default="latest"),
    sa.Column("catchup_limit", sa.Integer, nullable=False, server_default="24"),
    sa.Column("overlap", sa.String(10), nullable=False, server_default="wait"),
    sa.Column("notify", sa.Text),
    sa.Column("active_since", sa.Float),
    sa.Column("scheduled_through", sa.BigInteger),
    sa.Column("config_errors", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("lock_version", sa.Integer, nullable=False, server_default="0"),
)
slots = sa.Table(
    "slots", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("schedule_id", sa.Integer, sa.ForeignKey("schedules.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("scheduled_time", sa.BigInteger, nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(255)),  # 0002
    sa.Column("lease_expires", sa.Float),  # 0002
    sa.UniqueConstraint("schedule_id", "scheduled_time", name="uq_slots_schedule_time"),
)
runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slot_id", sa.Integer, sa.ForeignKey("slots.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("rows_read", sa.BigInteger),
    sa.Column("events_sent", sa.BigInteger),
    sa.Column("invalid_records", sa.BigInteger),
    sa.Column("rejected_events", sa.BigInteger),
    sa.Column("failed_events", sa.BigInteger),
    sa.Column("report_path", sa.Text),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("note", sa.Text),  # 0002
    sa.UniqueConstraint("slot_id", "attempt", name="uq_runs_slot_attempt"),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Several processes share the file: wait for a lock instead of failing, let readers go on
    # while one writes, and keep the foreign keys.
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


# Serialises schema upgrades on PostgreSQL: several schedulers may start at once on a new
# database (an arbitrary constant, the key of a transaction-level advisory lock).
_UPGRADE_LOCK = 0x636F6E6E


def _driver(url: sa.engine.URL) -> sa.engine.URL:
    """`postgresql://` names SQLAlchemy's default driver, psycopg2; the `postgres` extra
    installs psycopg 3, so use it when it is the one there."""
    if url.drivername == "postgresql":
        try:
            import psycopg  # noqa: F401  (only whether it is there)
        except ImportError:
            return url
        return url.set(drivername="postgresql+psycopg")
    return url


def open_engine(url: str) -> sa.engine.Engine:
    """An engine on the state database, its schema upgraded to the newest migration."""
    try:
        parsed = _driver(sa.engine.make_url(url))
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            folder = Path(parsed.database).expanduser().parent
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = sa.create_engine(parsed)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError, ValueError, OSError) as exc:
        raise ConfigError(f"--state: cannot use {safe_url(url)}: {type(exc).__name__}") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        upgrade(engine)
    except sa_exc.SQLAlchemyError as exc:
        engine.dispose()
        orig = getattr(exc, "orig", None) or exc
        raise ConfigError(f"--state: cannot open {safe_url(url)}: {orig}") from None
    return engine


def upgrade(engine: sa.engine.Engine) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": _UPGRADE_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
            return
        except sa_exc.OperationalError:
            # Another process created the tables between our look and our upgrade: look again.
            if attempt == 2:
                raise
