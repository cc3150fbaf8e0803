"""Schedules of components: stages, effective tier at an instant, embargo control, transitions."""
