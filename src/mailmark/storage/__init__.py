"""SQL storage (SQLAlchemy + Alembic) and the blob store."""
