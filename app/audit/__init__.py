"""Append-only, hash-chained audit events."""

from app.audit.service import record

__all__ = ["record"]
