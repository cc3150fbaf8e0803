"""Webhook subscriptions, the outbox and the delivery loop."""
