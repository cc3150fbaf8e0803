"""Append-only, hash-chained audit events."""

from app.audit.service import NewEvent, record, record_many

__all__ = ["NewEvent", "record", "record_many"]
