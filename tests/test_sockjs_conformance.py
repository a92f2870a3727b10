"""What the official SockJS protocol suite found (issue 12): headers, the
JSONP prefix, the WebSocket path's 405, a session closed right after it
opens, HTTP/1.0 streaming. ``tests/sockjs_conformance.py`` serves the suite
itself; docs/protocol.md lists where we differ on purpose.
"""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from .conftest import make_settings

TIMEOUT = 5.0


async def raw(port: int, request: str) -> bytes:
    """Send ``request`` as it is; everything the server sends until it
    closes the connection (or TIMEOUT passes: then what came so far)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request.encode())
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), TIMEOUT):
            data += chunk
    except TimeoutError:
        data += b"<still open>"
    finally:
        writer.close()
    return data


def head_and_body(response: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {"status": lines[0]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, body


async def raw_head(port: int, request: str) -> dict[str, str]:
    """The response headers to ``request`` (the body is not waited for)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request.encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    finally:
        writer.close()
    return head_and_body(head)[0]


@pytest.mark.parametrize(
    "request_line",
    ["POST /chat/000/nt1/xhr", "POST /chat/000/nt2/xhr_streaming", "GET /chat/000/nt3/jsonp?c=cb"],
)
@pytest.mark.gen_test
async def test_responses_that_must_not_be_cached_must_not_be_transformed(http_port, base_url, request_line):
    headers = await raw_head(http_port, f"{request_line} HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
    assert "no-transform" in headers["cache-control"], headers


@pytest.mark.parametrize("method, path", [("GET", "/chat/iframe.html"), ("OPTIONS", "/chat/info")])
@pytest.mark.gen_test
async def test_expires_is_an_http_date_in_gmt(fetch, method, path):
    response = await fetch(path, method=method)
    expires = response.headers["Expires"]
    assert expires.endswith(" GMT"), expires
    when = email.utils.parsedate_to_datetime(expires).timestamp()
    assert time.time() + 364 * 86400 < when < time.time() + 366 * 86400, expires


@pytest.mark.gen_test
async def test_the_eventsource_content_type_is_exactly_text_event_stream(http_port, base_url):
    headers = await raw_head(http_port, "GET /chat/000/es1/eventsource HTTP/1.0\r\n\r\n")
    assert headers["content-type"] == "text/event-stream", headers


@pytest.mark.parametrize("upgrade", [True, False])
@pytest.mark.gen_test
async def test_any_method_but_get_on_the_websocket_path_is_405_with_no_body(http_port, base_url, upgrade):
    extra = "Upgrade: websocket\r\nConnection: Upgrade\r\n" if upgrade else ""
    response = await raw(
        http_port, f"POST /chat/000/ws1/websocket HTTP/1.0\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    headers, body = head_and_body(response)
    assert headers["status"].split()[1] == "405", headers
    assert headers["allow"] == "GET"
    assert "content-type" not in headers, headers
    assert body == b""


FULL = 'c[4029,"Too many connections from your address"]'


@pytest.mark.parametrize("settings", [make_settings(max_connections_per_address=1)])
@pytest.mark.parametrize(
    "request_line, frames",
    [
        ("POST /chat/000/{}/xhr_streaming HTTP/1.1", ["o\n", FULL + "\n"]),
        ("GET /chat/000/{}/eventsource HTTP/1.1", ["data: o\r\n\r\n", f"data: {FULL}\r\n\r\n"]),
        ("POST /chat/000/{}/xhr_streaming HTTP/1.0", ["o\n", FULL + "\n"]),
        ("GET /chat/000/{}/eventsource HTTP/1.0", ["data: o\r\n\r\n", f"data: {FULL}\r\n\r\n"]),
    ],
)
@pytest.mark.gen_test(timeout=15)
async def test_a_session_closed_as_it_opens_sends_open_then_close_on_one_streaming_response(
    connect, http_port, request_line, frames
):
    await connect()  # the one connection this address may have
    session = request_line.split()[0].lower() + request_line.split()[2][-3:].replace(".", "")
    # An HTTP/1.0 client asking for keep-alive: the response must end all the same.
    connection = "Keep-Alive" if request_line.endswith("1.0") else "close"
    request = (
        request_line.format(session)
        + f"\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\nContent-Length: 0\r\n\r\n"
    )
    text = head_and_body(await raw(http_port, request))[1].decode()
    assert not text.endswith("<still open>"), text[-200:]
    opened, closed = text.find(frames[0]), text.find(frames[1])
    assert 0 < opened < closed, text[-200:]
