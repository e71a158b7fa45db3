"""The web adapter: REST API, WebSocket endpoint, sessions, proxy support, static files."""
