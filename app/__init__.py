"""weightgate: a staged model-weight distribution server."""

__version__ = "0.1.0"
