"""Health, readiness, metrics, request ids and structured logs."""
