"""Small helpers shared by the browser tests."""

from __future__ import annotations

import time


def wait_until(page, condition, timeout: float = 5.0) -> None:
    """Let Playwright dispatch events until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(20)
