"""Quotas: fixed-window counters shared by every replica (:mod:`.service`)."""
