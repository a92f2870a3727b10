"""Small helpers shared by the browser tests."""

from __future__ import annotations

import time


def wait_until(page, condition, timeout: float = 5.0) -> None:
    """Let Playwright dispatch events until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(20)


def after_layout(page) -> None:
    """Returns once the page has laid out and painted what has changed: two
    animation frames on (the first may be the one already under way)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def restart_with(start_server, server, monkeypatch, **env: str):
    """Stops ``server`` and starts another on its port and database, with the
    settings ``env`` (CHATZILLA_... variables) changed. Pages open on the old
    one reconnect to it, and still believe what they learnt with the page
    (the longest message): as after an operator changed a setting."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server.stop()
    return start_server(server.port)
