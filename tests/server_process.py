"""Run ``python -m chatzilla`` as a real process of its own, for restart and
crash tests (forked by the worker's fork server: tests/forkserver.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile

from .forkserver import FORK_SERVER, ROOT, Forked

__all__ = ["ROOT", "ServerProcess"]


class ServerProcess:
    """A Chatzilla server process; ``url`` is known once :meth:`start` returns."""

    def __init__(
        self, *args: str, port: int = 0, env: dict[str, str] | None = None, files_limit: int | None = None
    ) -> None:
        """``files_limit``: the process's limit of open files (RLIMIT_NOFILE)."""
        # --auth open (protocol 1) unless the test says otherwise: a later flag wins.
        self.args = ["--host", "127.0.0.1", "--port", str(port), "--auth", "open", *args]
        self.files_limit = files_limit
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: Forked | None = None
        self._stderr = None
        self.url = ""
        self.port = port

    def start(self) -> ServerProcess:
        # Its log goes to a file: a pipe nobody reads until the end fills up
        # (an access line per request) and then blocks the server.
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (read and closed in _log)
        # Forked from this worker's fork server (tests/forkserver.py): the
        # same process as `python -m chatzilla` without its start-up CPU.
        self.proc = FORK_SERVER.spawn(self.args, self.env, self._stderr, self.files_limit)
        line = self.proc.stdout.readline()
        if "serving" not in line:
            self.proc.kill()
            self.proc.communicate(timeout=5)
            raise RuntimeError(f"server did not start: {line!r} {self._log()!r}")
        self.url = line.split()[3].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
        """Send ``sig``, wait for the exit; return (exit status, stderr).

        A clean stop takes about a second (a Redis-backed one parks its
        people first); on a machine busy with parallel test workers it took
        more than 10."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError(
                f"server did not exit within {timeout}s after signal {sig}; its log:\n{self._log()}"
            ) from None
        return self.proc.returncode, self._log()

    def _log(self) -> str:
        """Everything the server wrote to stderr; the file is closed after."""
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read()
        self._stderr.close()
        return text

    def log_so_far(self) -> str:
        """What the running server has written to stderr until now (read
        with pread: the server writes at the file's shared offset)."""
        if self._stderr is None or self._stderr.closed:
            return ""
        fd = self._stderr.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")
