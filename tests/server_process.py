"""Run ``python -m chatzilla`` as a real subprocess, for restart and crash tests."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
        self.proc: subprocess.Popen | None = None
        self._stderr = None
        self.url = ""
        self.port = port

    def start(self) -> ServerProcess:
        # Its log goes to a file: a pipe nobody reads until the end fills up
        # (an access line per request) and then blocks the server.
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (read and closed in _log)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatzilla", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            preexec_fn=None if self.files_limit is None else self._limit_files,
        )
        line = self.proc.stdout.readline()
        if "serving" not in line:
            self.proc.kill()
            self.proc.communicate(timeout=5)
            raise RuntimeError(f"server did not start: {line!r} {self._log()!r}")
        self.url = line.split()[3].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def _limit_files(self) -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.files_limit, self.files_limit))

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
