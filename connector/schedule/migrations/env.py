"""Alembic's environment for the state database: run programmatically by
connector.schedule.state.upgrade, on the connection it passes."""
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
