"""Sending at a person's pace, over a phone's network (150 ms each way,
through :class:`~tests.browser.latency.DelayingProxy`): what is sent leaves
the composer at once, what is typed next is a new message, each goes out
once; and everyone, the sender too, sees the server's order."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .helpers import wait_until
from .latency import DelayingProxy
from .test_catch_up import stored

pytestmark = [
    pytest.mark.browser,
    # Flood control as by default (the shared servers have none).
    pytest.mark.server_flags("--rate-limit", "5"),
]


@pytest.fixture
def slow(server):
    """The server, 150 ms away each way."""
    proxy = DelayingProxy(server.port)
    yield proxy
    proxy.close()


def type_and_send(person, text: str) -> None:
    """Types ``text`` key by key where the focus is, and Enter: no waiting."""
    person.page.keyboard.type(text)
    person.page.keyboard.press("Enter")


def test_typing_on_at_once_sends_each_message_once(people, server, slow, artifacts):
    alice = people("alice@example.com", on=slow)
    bob = people("bob@example.com")
    alice.composer.click()
    type_and_send(alice, "ok")
    left_in_composer = [alice.composer.input_value()]
    # At once, while "ok" is still on its way (150 ms there, 150 back).
    type_and_send(alice, "see you at 5")
    left_in_composer.append(alice.composer.input_value())
    shown_at_once = alice.messages.locator(".content").all_text_contents()

    wait_until(bob.page, lambda: bob.messages.count() >= 2)
    wait_until(alice.page, lambda: alice.pending.count() == 0 and alice.messages.count() >= 2)
    bob.page.screenshot(path=str(artifacts / "sending-slow-network-receiver.png"))
    alice.page.screenshot(path=str(artifacts / "sending-slow-network-sender.png"))
    # What was sent left the composer at once, and showed in the list.
    assert left_in_composer == ["", ""]
    assert shown_at_once == ["ok", "see you at 5"]
    for person in (alice, bob):
        expect(person.messages.locator(".content")).to_have_text(["ok", "see you at 5"])
    alice.sees("alice@example.com", "see you at 5", mine=True)
    assert alice.ids() == bob.ids() == [1, 2]
    assert stored(server, people.room, "ok") == stored(server, people.room, "see you at 5") == 1


def test_a_burst_past_flood_control_reads_the_same_for_everyone(people, server, slow):
    """25 messages typed without a pause: flood control holds some back (10
    at once, then 5 a second), the rest wait as pending and go out in the
    order typed; the sender's page, the others' and a reload all read the
    same, the server's order."""
    alice = people("alice@example.com", on=slow)
    bob = people("bob@example.com")
    texts = [f"quick {i:02d}" for i in range(25)]
    alice.composer.click()
    for text in texts:
        type_and_send(alice, text)
    expect(alice.composer).to_have_value("")
    for person in (alice, bob):
        expect(person.messages).to_have_count(25, timeout=15_000)
    expect(alice.pending).to_have_count(0, timeout=15_000)
    expect(alice.failed).to_have_count(0)
    order = bob.messages.locator(".content").all_text_contents()
    assert sorted(order) == texts
    assert alice.messages.locator(".content").all_text_contents() == order
    assert alice.ids() == bob.ids() == list(range(1, 26))
    for text in texts:
        assert stored(server, people.room, text) == 1, text
    alice.page.reload()
    expect(alice.messages).to_have_count(25)
    assert alice.messages.locator(".content").all_text_contents() == order
