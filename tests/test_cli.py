"""``python -m chatzilla`` as a user runs it: real subprocesses, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tornado.websocket import websocket_connect

from chatzilla.privacy import email_hash

ROOT = Path(__file__).resolve().parent.parent
# A bound, not a wait: a start-up takes a fraction of a second, but at a
# load of 20 on two cores a process can wait seconds for the CPU (10 s was
# exceeded by `--help` there, on a fresh clone compiling its bytecode).
TIMEOUT = 30.0
URL_LINE = re.compile(r"^Chatzilla is serving http://127\.0\.0\.1:(\d+)/")

SETTINGS_FLAGS = [
    "--host",
    "--port",
    "--history-limit",
    "--max-content",
    "--rate-limit",
    "--max-frame",
    "--max-connections-per-address",
    "--max-rooms",
    "--max-queued",
    "--allowed-origins",
    "--heartbeat-delay",
    "--disconnect-delay",
    "--shutdown-grace",
    "--log-level",
]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any Chatzilla setting in it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHATZILLA_") and k not in ("PORT", "PYTHONWARNINGS")
    }
    env.update(extra)
    return env


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chatzilla", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def assert_one_clean_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- start-up: help and refusals ---------------------------------------------------


def test_help_exits_zero_and_lists_every_setting():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for flag in SETTINGS_FLAGS:
        assert flag in result.stdout
    assert "PORT" in result.stdout and "CHATZILLA_PORT" in result.stdout


@pytest.mark.parametrize(
    "args, env, names",
    [
        (["--port", "abc"], {}, ["port", "--port", "abc"]),
        ([], {"PORT": "notanumber"}, ["port", "PORT", "notanumber"]),
        ([], {"CHATZILLA_PORT": "70000"}, ["port", "CHATZILLA_PORT", "70000"]),
        (["--history-limit", "0"], {}, ["history_limit", "--history-limit"]),
        ([], {"CHATZILLA_LOG_LEVEL": "loud"}, ["log_level", "CHATZILLA_LOG_LEVEL", "loud"]),
    ],
    ids=["flag-port", "env-PORT", "env-CHATZILLA_PORT-range", "flag-history-limit", "env-log-level"],
)
def test_bad_setting_exits_2_with_one_line(args, env, names):
    result = run_cli(*args, **env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = assert_one_clean_line(result.stderr)
    for name in names:
        assert name in line, line
    assert result.stdout == ""  # nothing claims to be serving


def test_port_in_use_exits_2_with_one_clear_line():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = assert_one_clean_line(result.stderr)
    assert f"127.0.0.1:{port}" in line, line
    assert "in use" in line.lower(), line
    assert result.stdout == ""


# -- serving and shutting down ----------------------------------------------------


class Server:
    """A running ``python -m chatzilla`` with its output captured in files."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.out_path, self.err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                # Its own database: not the chatzilla.db of the working tree,
                # which would carry messages over from one test run to the next.
                [
                    sys.executable,
                    "-m",
                    "chatzilla",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--db",
                    str(tmp_path / "chatzilla.db"),
                    # Protocol 1 unless a test says otherwise (a later flag wins).
                    "--auth",
                    "open",
                    *args,
                ],
                cwd=ROOT,
                env=clean_env(),
                stdout=out,
                stderr=err,
                text=True,
            )
        self.port = self._wait_for_url()
        self.base = f"http://127.0.0.1:{self.port}"

    def _wait_for_url(self) -> int:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            first = self.stdout().partition("\n")
            if first[1]:
                match = URL_LINE.match(first[0])
                assert match, first[0]
                return int(match.group(1))
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.stderr()}"
            time.sleep(0.02)
        raise AssertionError(f"no URL on stdout within {TIMEOUT}s: {self.stderr()}")

    def stdout(self) -> str:
        return self.out_path.read_text()

    def stderr(self) -> str:
        return self.err_path.read_text()

    def get_json(self, path: str) -> tuple[int, str, dict]:
        with urllib.request.urlopen(self.base + path, timeout=TIMEOUT) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)


@pytest.fixture
def server(tmp_path):
    # Its own database: the default, ./chatzilla.db in the repository, would
    # outlive the test and number the next run's first message 2.
    running = Server(tmp_path, "--db", str(tmp_path / "chatzilla.db"))
    yield running
    running.stop()


class SockJSWebSocket:
    """Just enough of a SockJS websocket client: 'o', 'h', 'a[...]', 'c[...]'."""

    def __init__(self, ws) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, port: int) -> SockJSWebSocket:
        ws = await websocket_connect(f"ws://127.0.0.1:{port}/chat/000/abcdefgh/websocket")
        return cls(ws)

    async def packet(self) -> str | None:
        """The next SockJS packet other than a heartbeat; None once closed."""
        while True:
            packet = await asyncio.wait_for(self.ws.read_message(), TIMEOUT)
            if packet != "h":
                return packet

    async def send(self, frame: dict) -> None:
        await self.ws.write_message(json.dumps([json.dumps(frame)]))

    async def expect(self, kind: str) -> dict:
        packet = await self.packet()
        assert packet is not None and packet.startswith("a"), packet
        frames = [json.loads(text) for text in json.loads(packet[1:])]
        assert [f["type"] for f in frames] == [kind], frames
        return frames[0]

    def close(self) -> None:
        self.ws.close()


def test_serves_and_shuts_down_cleanly_on_sigterm(server):
    secret = "zebra-quartz-7731 plans for tuesday"

    status, content_type, health = server.get_json("/healthz")
    assert status == 200
    assert content_type.startswith("application/json")
    assert health == {"status": "ok", "connections": 0, "participants": 0}

    async def session() -> tuple[str | None, str | None, float]:
        client = await SockJSWebSocket.connect(server.port)
        # A second session that never joins: it is closed all the same.
        bystander = await SockJSWebSocket.connect(server.port)
        try:
            assert await bystander.packet() == "o"
            assert await client.packet() == "o"
            await client.send({"type": "join", "email": "a@example.com"})
            joined = await client.expect("joined")
            assert joined["participants"] == ["a@example.com"]
            _, _, health = await asyncio.to_thread(server.get_json, "/healthz")
            assert health == {"status": "ok", "connections": 2, "participants": 1}
            await client.send({"type": "message", "content": secret, "ref": "r-1"})
            sent = await client.expect("sent")
            assert sent["id"] == 1 and sent["ref"] == "r-1"

            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            close_packet = await client.packet()
            after_close = await client.packet()  # the server then ends the websocket
            assert await bystander.packet() == close_packet
            assert await bystander.packet() is None
            return close_packet, after_close, started
        finally:
            client.close()
            bystander.close()

    close_packet, after_close, started = asyncio.run(session())
    assert close_packet == 'c[3001,"Server shutting down"]'
    assert after_close is None

    returncode = server.proc.wait(timeout=max(0.1, 5 - (time.monotonic() - started)))
    elapsed = time.monotonic() - started
    assert returncode == 0, server.stderr()
    assert elapsed < 5

    stdout, stderr = server.stdout(), server.stderr()
    assert stdout.splitlines() == [f"Chatzilla is serving http://127.0.0.1:{server.port}/ (Ctrl-C to stop)"]
    assert "Traceback" not in stderr
    info = [line for line in stderr.splitlines() if " INFO " in line]
    # People are logged by a hash of their address, never the address.
    assert "a@example.com" not in stderr
    who = email_hash("a@example.com")
    joins = [line for line in info if f"join {who} " in line]
    leaves = [line for line in info if f"leave {who} " in line]
    assert len(joins) == 1, stderr
    # Not a leave: expected back when the server is (the presence grace).
    assert leaves == [], stderr
    assert [line for line in info if "1 present at shutdown, expected back" in line], stderr
    assert not [line for line in stderr.splitlines() if " WARNING " in line or " ERROR " in line], stderr
    # Message content is never logged (nor the part of it that looks like a word).
    assert "zebra-quartz-7731" not in stdout + stderr
    assert "tuesday" not in stdout + stderr


def test_sigint_also_exits_zero(server):
    status, _, _ = server.get_json("/healthz")
    assert status == 200
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=5) == 0
    assert "Traceback" not in server.stderr()


def _first_line_and_stop(*args: str, tmp_path: Path) -> tuple[str, str]:
    """Start ``python -m chatzilla ARGS`` on a free port, wait for its
    start-up line, load /healthz, stop it: (that line, its stderr)."""
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chatzilla", "--port", "0", "--db", str(tmp_path / "c.db"), *args],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = re.search(r":(\d+)/", line)
        assert port, (line, err_path.read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/healthz", timeout=TIMEOUT):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=TIMEOUT)
    return line, err_path.read_text()


def test_start_up_line_names_the_address_listened_on(tmp_path):
    line, _ = _first_line_and_stop("--host", "0.0.0.0", tmp_path=tmp_path)
    # Not "localhost": every interface, which the network reaches.
    assert line.startswith("Chatzilla is serving http://0.0.0.0:"), line
    assert "every interface" in line and "--host 127.0.0.1" in line, line


def test_json_logs_are_one_event_a_line(tmp_path):
    _, stderr = _first_line_and_stop("--host", "127.0.0.1", "--log-format", "json", tmp_path=tmp_path)
    events = [json.loads(line) for line in stderr.splitlines()]
    assert events, stderr
    for event in events:
        assert {"ts", "level", "logger", "message"} <= set(event), event
    # The request to /healthz, from Tornado's access log, is one of them.
    assert any(e["logger"] == "tornado.access" and "/healthz" in e["message"] for e in events), events
