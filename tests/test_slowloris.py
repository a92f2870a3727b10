"""Slowloris and the file limit (issue 12, item 2): connections that never
finish a request are timed out and capped per address, /healthz answers
meanwhile, and running out of file descriptors is logged once and waited out.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import urllib.request

import pytest

from chatzilla.proxies import parse_networks
from chatzilla.server import max_sockets_per_address

from .conftest import make_settings
from .server_process import ServerProcess
from .test_redis import wait_for as wait_until

HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never finished


async def half_sent_head(port: int, source: str = "127.0.0.1"):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(HEAD)
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader, within: float = 5.0) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def healthz(port: int, source: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("settings", [make_settings(header_timeout=0.5)])
@pytest.mark.gen_test(timeout=10)
async def test_an_unfinished_request_head_is_timed_out(http_port, base_url):
    reader, writer = await half_sent_head(http_port)
    assert await closed_by_server(reader)
    writer.close()


@pytest.mark.parametrize(
    "settings", [make_settings(trusted_proxies=parse_networks(""), max_connections_per_address=2)]
)
@pytest.mark.gen_test(timeout=20)
async def test_raw_connections_are_capped_per_address_and_healthz_answers(http_port, base_url):
    cap = max_sockets_per_address(2)
    held = [await half_sent_head(http_port) for _ in range(cap)]
    extra = [await half_sent_head(http_port) for _ in range(20)]
    # Past the cap, each is closed at once; the others are held (until their timeout).
    assert all(await asyncio.gather(*(closed_by_server(reader) for reader, _ in extra)))
    assert not any(await asyncio.gather(*(closed_by_server(reader, 0.2) for reader, _ in held)))
    # Someone else is served meanwhile.
    assert (await healthz(http_port, "127.0.0.2")).startswith(b"HTTP/1.1 200")
    for _, writer in held + extra:
        writer.close()


def test_past_the_file_limit_accepting_is_logged_once_and_resumes():
    server = ServerProcess("--storage", "memory", files_limit=64).start()
    try:
        crowd = []
        for _ in range(120):  # well past the limit: accept() fails with EMFILE
            sock = socket.create_connection(("127.0.0.1", server.port))
            crowd.append(sock)
        wait_until(lambda: "cannot accept connections" in server.log_so_far(), what="the EMFILE warning")
        time.sleep(1)  # several back-off rounds while the crowd stays
        for sock in crowd:
            with contextlib.suppress(OSError):
                sock.close()
        wait_until(lambda: "accepting connections again" in server.log_so_far(), what="accepting again")
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as response:
            assert response.status == 200
        log = server.log_so_far()
        assert log.count("cannot accept connections") == 1, log
        assert "Traceback" not in log, log[:2000]
    finally:
        server.stop()
