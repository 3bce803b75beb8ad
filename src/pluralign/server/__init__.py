"""The HTTP service (FastAPI) and its page."""

from pluralign.server.app import create_app
from pluralign.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
