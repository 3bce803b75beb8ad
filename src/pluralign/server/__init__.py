"""The HTTP service: FastAPI app, run with ``pluralign serve``."""

from pluralign.server.app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
