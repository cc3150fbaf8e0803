"""Append-only, hash-chained audit events."""

from app.audit.service import Head, NewEvent, chain, record, record_many

__all__ = ["Head", "NewEvent", "chain", "record", "record_many"]
