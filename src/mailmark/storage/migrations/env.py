"""Alembic environment: runs on the connection `mailmark.storage.migrate` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mailmark.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    # `alembic revision --autogenerate` from the command line, against a scratch SQLite database.
    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///./data/alembic-scratch.db"
    with create_engine(url).connect() as scratch:
        context.configure(connection=scratch, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
