"""Deployment files that are Python: the lock file tool (lockfile.py)."""
