"""Start ``python -m chatzilla`` processes without paying for Python's
start-up and the server's imports each time.

A test's server process spent about 0.4 s of CPU starting (the interpreter,
then Tornado, sockjs-tornado, Jinja2, prometheus_client, redis and asyncpg),
and 0.06 s on what the test made it do; the server suite starts about 150.
So each pytest worker keeps one *fork server*: a process started once, like
``python -m chatzilla`` from the repository, that imports those modules and
then waits. Asked for a server, it forks; the child takes the test's argv,
environment, working directory, file limit, stdout and stderr, and runs
``chatzilla``'s ``__main__`` as ``python -m`` would (runpy), then exits with
its status. The server is a real process of its own as before: it binds its
port, takes signals (SIGTERM, SIGKILL, SIGSTOP) and exits with the status
tests check. Only its start-up is shared.

Each request is a connection to the fork server's Unix socket: the request
(JSON) with the child's stdout and stderr as file descriptors (SCM_RIGHTS).
A forked helper of the fork server waits for the child and sends back its
pid and, when it ends, its exit status (as Popen's returncode: -N for a
signal), so :class:`Forked` answers like the Popen it stands for.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent

#: What ``python -m chatzilla`` imports on its way to serving, with every
#: backend's client library: imported once, by the fork server.
PRELOAD = (
    "chatzilla.__main__",
    "chatzilla.app",
    "chatzilla.backends.postgres",
    "chatzilla.backends.redis",
    "tornado.httpserver",
    "tornado.netutil",
)


class Forked:
    """The Popen calls ServerProcess makes, for a process the fork server started."""

    def __init__(self, conn: socket.socket, stdout: IO[str]) -> None:
        self._conn = conn
        self._received = b""
        self.stdout = stdout
        pid = self._answer(None)
        assert pid is not None, "the fork server gave no pid"
        self.pid = pid
        self.returncode: int | None = None

    def _answer(self, timeout: float | None) -> int | None:
        """The next line the fork server's helper sends (the pid, then the
        exit status), or None if none comes within ``timeout`` seconds."""
        while b"\n" not in self._received:
            if not select.select([self._conn], [], [], timeout)[0]:
                return None
            chunk = self._conn.recv(64)
            if not chunk:
                raise RuntimeError("the fork server's helper ended without an answer")
            self._received += chunk
        line, self._received = self._received.split(b"\n", 1)
        return int(line)

    def poll(self) -> int | None:
        return self.wait(0) if self._exit(0) is not None else None

    def wait(self, timeout: float | None = None) -> int:
        if self._exit(timeout) is None:
            raise subprocess.TimeoutExpired(f"chatzilla (pid {self.pid})", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def _exit(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            self.returncode = self._answer(timeout)
            if self.returncode is not None:
                self._conn.close()
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, None]:
        """Waits for the exit and reads the rest of stdout (as Popen does,
        the reading goes on while waiting, so a chatty child is not blocked)."""
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.append(self.stdout.read()), daemon=True)
        reader.start()
        self.wait(timeout)
        reader.join(timeout)
        self.stdout.close()
        return "".join(rest), None

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """This process's fork server, started at its first use."""

    def __init__(self) -> None:
        self._path = ""
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _started(self) -> str:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                folder = tempfile.mkdtemp(prefix="chatzilla-fork-")
                self._path = os.path.join(folder, "socket")
                # Its stdin is a pipe from this process: when this process
                # ends, however it ends, the fork server reads EOF and ends too.
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.forkserver", self._path],
                    cwd=ROOT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert self._proc.stdout is not None
                ready = self._proc.stdout.readline()
                assert ready == "ready\n", f"the fork server did not start: {ready!r}"
                atexit.register(self._stop)
            return self._path

    def _stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait(10)
            assert self._proc.stdout is not None
            self._proc.stdout.close()

    def spawn(self, args: list[str], env: dict[str, str], stderr: IO[str], files_limit: int | None) -> Forked:
        """``python -m chatzilla *args`` with ``env``, its stdout a pipe to
        read, its stderr ``stderr`` (a file)."""
        path = self._started()
        read_end, write_end = os.pipe()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
            request = {"args": args, "env": env, "cwd": str(ROOT), "files_limit": files_limit}
            socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [write_end, stderr.fileno()])
        except BaseException:
            conn.close()
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return Forked(conn, os.fdopen(read_end, "r"))


FORK_SERVER = ForkServer()


# -- the fork server itself ---------------------------------------------------------


def _serve(path: str) -> None:
    for name in PRELOAD:
        __import__(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    # The helpers forked for each request are reaped by the kernel.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        ready = select.select([listener, sys.stdin], [], [])[0]
        if sys.stdin in ready:
            break  # EOF: the pytest worker has gone
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _helper(conn)  # never returns
        conn.close()
    listener.close()
    os.unlink(path)
    os.rmdir(os.path.dirname(path))  # ForkServer's mkdtemp, empty now


def _helper(conn: socket.socket) -> None:
    """In a fork of the fork server: read the request, fork the server,
    answer its pid, wait for it and answer its exit status."""
    status = 1
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            conn.close()
            _run_server(request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        conn.sendall(f"{pid}\n".encode())
        _, wait_status = os.waitpid(pid, 0)
        conn.sendall(f"{os.waitstatus_to_exitcode(wait_status)}\n".encode())
        status = 0
    finally:
        os._exit(status)


def _run_server(request: dict, fds: list[int]) -> None:
    """In the server's process: become ``python -m chatzilla *args``."""
    code = 1
    try:
        stdout, stderr = fds
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
        # Like Popen's close_fds: the server holds no descriptor but its own.
        for fd in {int(name) for name in os.listdir("/proc/self/fd")} - {0, 1, 2}:
            try:
                os.close(fd)
            except OSError:
                pass
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        if request["files_limit"] is not None:
            limit = request["files_limit"]
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sys.argv = ["-m", *request["args"]]
        # Preloaded for its imports; run afresh as `python -m` runs it
        # (left in sys.modules, runpy warns on stderr that it was).
        sys.modules.pop("chatzilla.__main__", None)
        try:
            runpy.run_module("chatzilla", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        # What the interpreter does on its way out: wait for the threads
        # that are not daemons, and concurrent.futures' executors' queued
        # work (threading._shutdown: a server whose stop hangs on a thread
        # must hang here too), then atexit (logging's shutdown among
        # others), then out without unwinding into the fork server's code.
        try:
            threading._shutdown()  # type: ignore[attr-defined]
        except BaseException:
            traceback.print_exc()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


if __name__ == "__main__":
    _serve(sys.argv[1])
