"""The scheduler service: catch-up and overlap per schedule, notifications, the consecutive
configuration errors that disable a schedule, the slot queue and the lease on a running slot.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        # What runs after downtime (latest | all | none), and how many slots `all` runs at most.
        batch.add_column(sa.Column("catchup", sa.String(10), nullable=False,
                                   server_default="latest"))
        batch.add_column(sa.Column("catchup_limit", sa.Integer, nullable=False,
                                   server_default="24"))
        # A slot due while the schedule runs: wait for the run, or skip the slot.
        batch.add_column(sa.Column("overlap", sa.String(10), nullable=False,
                                   server_default="wait"))
        batch.add_column(sa.Column("notify", sa.Text))  # JSON list of notification targets
        # Slots before this instant never run (creation, re-enabling, a new cron or zone);
        # NULL: since created_at.
        batch.add_column(sa.Column("active_since", sa.Float))
        # The last scheduled time the service has decided about (queued or skipped).
        batch.add_column(sa.Column("scheduled_through", sa.BigInteger))
        batch.add_column(sa.Column("config_errors", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("disabled_reason", sa.Text))
        # Bumped by every scheduler transaction on the schedule: the row lock that serialises
        # deciding and claiming its slots across processes and machines.
        batch.add_column(sa.Column("lock_version", sa.Integer, nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("slots") as batch:
        # Who runs the slot now, and until when: the running scheduler renews it; once it has
        # expired, another scheduler takes the slot over as a new attempt.
        batch.add_column(sa.Column("lease_owner", sa.String(255)))
        batch.add_column(sa.Column("lease_expires", sa.Float))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("note", sa.Text))
    op.create_index("ix_runs_status", "runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_runs_status", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("note")
    with op.batch_alter_table("slots") as batch:
        batch.drop_column("lease_expires")
        batch.drop_column("lease_owner")
    with op.batch_alter_table("schedules") as batch:
        for column in ("lock_version", "disabled_reason", "config_errors", "scheduled_through",
                       "active_since", "notify", "overlap", "catchup_limit", "catchup"):
            batch.drop_column(column)
