"""The web surface: a FastAPI app with the JSON API under /api and the Gradio page at /."""

from .app import create_app, run
from .config import ServerConfig
from .work import Worker

__all__ = ["ServerConfig", "Worker", "create_app", "run"]
