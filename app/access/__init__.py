"""Principals, API keys, partners, access requests, grants and the access rule."""
