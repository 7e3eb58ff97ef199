"""Stores: the system of record (embedded SQLite by default, MongoDB when configured)."""
