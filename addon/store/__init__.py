"""Persistence: SQLModel tables, engine and migrations, and keyword-only query functions."""
