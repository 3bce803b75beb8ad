"""The HTTP service (FastAPI) and its page: ``server.app.create_app`` builds it from a
``server.config.ServerConfig``. Nothing is imported here, so reading the service's options
(``pluralign serve --help``) does not load FastAPI."""
