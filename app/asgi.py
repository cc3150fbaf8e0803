"""ASGI entry point for uvicorn/gunicorn: ``app.asgi:app``."""

from app.main import create_app
from app.settings import get_settings, running_in_container

# Here rather than in create_app(): whatever starts the server (``weightgate serve``, or
# uvicorn/gunicorn pointed at this module) passes through it, and tests do not.
get_settings().check_production(in_container=running_in_container())
app = create_app()
