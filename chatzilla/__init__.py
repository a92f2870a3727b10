"""Chatzilla: a realtime chat in the browser (Tornado + SockJS)."""

__version__ = "0.1.0"
