"""``/metrics``: off the public port unless a token is set; what it counts."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import make_settings
from .helpers import free_port
from .server_process import ServerProcess

TOKEN = "s3cret-token"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.gen_test
async def test_no_metrics_on_the_public_port_by_default(fetch):
    assert (await fetch("/metrics")).code == 404


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [make_settings(metrics_token=TOKEN)])
async def test_metrics_behind_a_token_count_the_chat(fetch, connect, health):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        assert (await fetch("/metrics", headers=headers)).code == 404, headers

    alice = await connect("websocket")
    bob = await connect("websocket")
    carol = await connect("xhr-polling")
    await alice.join("alice@example.com")
    await bob.join("bob@example.com")
    await carol.join("carol@example.com")
    await alice.expect_many("presence", 2)  # bob's and carol's joins
    await alice.say("hello", ref="r1")
    await alice.send({"type": "dance"})
    assert (await alice.expect("error"))["code"] == "bad_frame"
    await health(connections=3, participants=3)

    response = await fetch("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    got = samples(response.body.decode())
    assert got[("chatzilla_connections", (("transport", "websocket"),))] == 2
    assert got[("chatzilla_connections", (("transport", "xhr"),))] == 1
    assert got[("chatzilla_people", ())] == 3
    assert got[("chatzilla_rooms", ())] == 1
    assert got[("chatzilla_messages_received_total", ())] == 1
    assert got[("chatzilla_messages_delivered_total", ())] == 1
    assert got[("chatzilla_deliveries_total", ())] == 3  # bob, carol, and alice's sent
    assert got[("chatzilla_refused_frames_total", (("code", "bad_frame"),))] == 1
    assert got[("chatzilla_store_seconds_count", ())] == 1
    assert got[("chatzilla_slow_consumer_closes_total", ())] == 0
    assert got[("chatzilla_backend_healthy", ())] == 1


def test_metrics_port_serves_metrics_apart():
    metrics_port = free_port()
    server = ServerProcess("--storage", "memory", "--metrics-port", str(metrics_port)).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            got = samples(response.read().decode())
        assert got[("chatzilla_people", ())] == 0
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}/metrics", timeout=10)
        assert refused.value.code == 404
        refused.value.close()
    finally:
        server.stop()
