"""Faster than the server's flood control (5 messages a second, bursts of
10): what it refuses as too fast waits as pending and goes out after the
wait it names, in the order it was typed; nothing is lost or doubled."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .test_catch_up import stored

pytestmark = [
    pytest.mark.browser,
    # Flood control as by default (the shared servers have none).
    pytest.mark.server_flags("--rate-limit", "5"),
]


#: Types each text in the composer and presses Enter, all in one go in the
#: page: far faster than flood control, however slow the machine (25 fills
#: and presses from the test, a round trip each, took past 5 s at load 26,
#: and then none had to wait).
TYPE_AND_SEND_ALL = """texts => {
  const box = document.getElementById('message');
  for (const text of texts) {
    box.value = text;
    box.dispatchEvent(new Event('input', {bubbles: true}));
    box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
  }
}"""


def test_messages_sent_too_fast_wait_and_go_out_in_order(people, server):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    texts = [f"quick {i:02d}" for i in range(25)]
    alice.page.evaluate(TYPE_AND_SEND_ALL, texts)  # without waiting for any acknowledgement
    # Some had to wait: shown as pending meanwhile, never as failed.
    expect(alice.page.locator("#messages li.message.pending").first).to_be_visible()
    for person in (alice, bob):
        expect(person.messages.locator(".content")).to_have_text(texts, timeout=10_000)
    expect(alice.pending).to_have_count(0, timeout=10_000)
    expect(alice.failed).to_have_count(0)
    expect(alice.page.locator("#composer-error")).to_be_hidden()
    expect(alice.composer).to_have_value("")
    assert alice.ids() == bob.ids() == list(range(1, 26))
    for text in (texts[0], texts[-1]):
        alice.sees("alice@example.com", text, mine=True)
        expect(alice.message(text)).to_have_attribute("data-id", re.compile(r"^\d+$"))
        assert stored(server, people.room, text) == 1
