"""Schedules, their slots (one per schedule and scheduled time) and the runs of each slot.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        # What runs: "export" (a query and an output); a "workflow" kind is reserved.
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("delay_seconds", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),  # JSON, by kind
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    # A slot is claimed once: the unique key is what keeps two runners off the same slot.
    op.create_table(
        "slots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("schedule_id", sa.Integer, sa.ForeignKey("schedules.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("scheduled_time", sa.BigInteger, nullable=False),  # UNIX seconds
        sa.Column("claimed_at", sa.Float, nullable=False),
        sa.UniqueConstraint("schedule_id", "scheduled_time", name="uq_slots_schedule_time"),
    )
    # Each run of a slot; running a slot again (asked for) adds an attempt.
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slot_id", sa.Integer, sa.ForeignKey("slots.id", ondelete="CASCADE"),
                  nullable=False),
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
        sa.UniqueConstraint("slot_id", "attempt", name="uq_runs_slot_attempt"),
    )


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_table("slots")
    op.drop_table("schedules")
