"""Hubbub: a self-hosted chat server for the browser."""

__version__ = "0.1.0"
