"""The documented local cluster: two processes behind nginx with SockJS stickiness."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .helpers import free_port
from .sockjs_client import WebSocketClient, XhrPollingClient, XhrStreamingClient
from .test_redis import prefix, redis_url  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.fixture
def cluster(redis_url, prefix):  # noqa: F811
    if NGINX is None:
        reason = "NGINX IS NOT INSTALLED: the cluster test did not run"
        if os.environ.get("CHATZILLA_REQUIRE_REDIS"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "deploy/cluster.py",
            "--port",
            str(port),
            "--redis-url",
            redis_url,
            "--redis-prefix",
            prefix,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "CHATZILLA_AUTH": "open"},
    )
    lines = [proc.stdout.readline() for _ in range(3)]
    assert "cluster is serving" in lines[0], lines
    processes = [line.split()[1].rstrip("/") for line in lines[1:]]
    yield f"http://127.0.0.1:{port}", processes
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    proc.stdout.close()


def connections(url: str) -> int:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
        return json.load(response)["connections"]


def test_polling_sessions_stick_to_one_process_and_everyone_chats(cluster):
    front, processes = cluster

    async def scenario():
        listener = await WebSocketClient(front).connect()
        await listener.join("listener@example.com")
        talkers = []
        for i in range(20):
            kind = XhrPollingClient if i % 2 == 0 else XhrStreamingClient
            talker = await kind(front).connect()
            talkers.append(talker)
            await talker.join(f"t{i}@example.com")
            assert (await listener.expect("presence"))["email"] == f"t{i}@example.com"
        spread = [await asyncio.to_thread(connections, url) for url in processes]
        # Every request of a session reached the process holding it (a send
        # to the other would be a 404 and fail `say`), and sessions spread.
        for i, talker in enumerate(talkers):
            await talker.send({"type": "message", "content": f"hello from {i}", "ref": f"t{i}"})
            ack = await talker.recv()
            while ack["type"] in ("presence", "message"):  # later joiners, earlier talkers
                ack = await talker.recv()
            assert (ack["type"], ack["ref"]) == ("sent", f"t{i}"), ack
            got = await listener.expect("message")
            assert (got["id"], got["content"]) == (ack["id"], f"hello from {i}")
        for talker in talkers:
            await talker.close()
        await listener.close()
        return spread

    spread = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert sum(spread) == 21 and min(spread) > 0, spread
