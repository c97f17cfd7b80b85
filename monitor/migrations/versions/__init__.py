"""One module per schema revision (Alembic's version files)."""
