"""The ``weightgate`` command. Client-side commands never import server modules."""
