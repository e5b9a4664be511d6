"""Alembic migrations of the store's schema (run with ``matcher db upgrade``)."""
