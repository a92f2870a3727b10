"""Scrolling up loads older messages, 50 at a time, until the beginning.

Messages are seeded through the raw ``/chat/websocket`` endpoint from a
helper page (a bot, as far as the server knows), much faster than typing.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .relay import Relay

pytestmark = [
    pytest.mark.browser,
    # The seeder is a bot storing thousands of messages at once: flood
    # control off (the page's own pace is checked elsewhere), and no disk
    # (what is kept is not the point).
    pytest.mark.server_flags("--rate-limit", "0", "--storage", "memory"),
]

RECONNECT_TIMEOUT = 15_000

#: Sends `count` messages "PREFIX001"... as seeder@example.com in `room`
#: and resolves once all are acknowledged.
SEED = """async ({url, room, count, prefix, first}) => {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  let acked = 0;
  const done = new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === 'error') { reject(new Error(event.data)); }
      if (frame.type === 'sent' && ++acked === count) { resolve(); }
    };
  });
  ws.send(JSON.stringify({type: 'join', email: 'seeder@example.com', room: room}));
  for (let i = first; i < first + count; i++) {
    const content = prefix + String(i).padStart(3, '0');
    ws.send(JSON.stringify({type: 'message', content: content, ref: content}));
  }
  await done;
  ws.close();
}"""


@pytest.fixture
def seed(people, server):
    """``seed(count, first=1)`` stores messages "seed 001"... in the test's room."""
    seeder = people()
    url = server.url.replace("http://", "ws://") + "chat/websocket"

    def send(count: int, first: int = 1) -> None:
        seeder.page.evaluate(
            SEED, {"url": url, "room": people.room, "count": count, "prefix": "seed ", "first": first}
        )

    return send


def contents(first: int, last: int) -> list[str]:
    return [f"seed {i:03d}" for i in range(first, last + 1)]


def scroll_to_beginning(person, tries: int = 40) -> None:
    """Scroll up with the mouse wheel, as a person would, until the beginning shows."""
    beginning = person.page.locator("#messages li.marker.beginning")
    person.page.locator("#messages").hover()
    for _ in range(tries):
        if beginning.count():
            break
        person.page.mouse.wheel(0, -20_000)
        person.page.wait_for_timeout(100)
    expect(beginning).to_have_text("Beginning of the conversation")


def test_scrolling_up_loads_every_message_once_in_order(people, seed):
    seed(120)
    carol = people(transport="websocket")
    relay = Relay(carol.page)  # to see the history requests the page makes
    carol.page.reload()
    carol.join("carol@example.com")
    expect(carol.messages).to_have_count(50)
    assert carol.ids() == list(range(71, 121))
    # Opened at the bottom, on the newest message; nothing loaded yet.
    messages = carol.page.locator("#messages")
    assert messages.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 5
    assert relay.frames("history") == []
    expect(carol.marker).to_have_count(0)

    # To the top at once, with a burst of scroll events: one request, and
    # the message that was at the top stays where it was on screen.
    before = messages.evaluate("""el => {
      el.scrollTop = 0;
      for (let i = 0; i < 10; i++) { el.dispatchEvent(new Event('scroll')); }
      return document.querySelector('[data-id="71"]').getBoundingClientRect().top;
    }""")
    expect(carol.messages).to_have_count(100)
    after = carol.page.locator('[data-id="71"]').evaluate("el => el.getBoundingClientRect().top")
    assert abs(after - before) < 1, (before, after)
    assert messages.evaluate("el => el.scrollTop") > 0
    assert [(f["before"], f["limit"]) for f in relay.frames("history")] == [(71, 50)]

    # The rest with the mouse wheel.
    scroll_to_beginning(carol)
    expect(carol.marker).to_have_text("Beginning of the conversation")
    expect(carol.messages.locator(".content")).to_have_text(contents(1, 120))
    assert carol.ids() == list(range(1, 121))
    assert [f["before"] for f in relay.frames("history")] == [71, 21]
    # Live messages still go to the bottom.
    seed(1, first=121)
    expect(carol.messages.last.locator(".content")).to_have_text("seed 121")


def test_a_short_conversation_says_where_it_begins(people, seed):
    seed(3)
    carol = people("carol@example.com")
    expect(carol.messages.locator(".content")).to_have_text(contents(1, 3))
    # Nothing to scroll, so the page asked by itself and learnt there is no more.
    expect(carol.marker).to_have_text("Beginning of the conversation")
    dave = people("dave@example.com", path=f"r/{people.room}-empty")
    expect(dave.marker).to_have_text("Beginning of the conversation")


def cut_and_seed(people, seed, missed: int):
    """Alice sees 3 messages, misses ``missed`` more, and is back."""
    people.allow_network_errors = True
    alice = people(transport="websocket")
    relay = Relay(alice.page)
    alice.page.reload()
    alice.join("alice@example.com")
    seed(3)
    expect(alice.messages.locator(".content")).to_have_text(contents(1, 3))
    relay.cut()
    expect(alice.status).to_have_text("Reconnecting…")
    for first in range(4, 4 + missed, 2000):  # within the server's inbox cap
        seed(min(2000, 4 + missed - first), first=first)
    relay.restore()
    expect(alice.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT)
    return alice


def test_more_missed_than_one_catch_up_carries(people, seed):
    """A rejoin gets at most 1000 missed messages and `more`: the page
    fetches the rest, down to what it showed, and shows them in order."""
    alice = cut_and_seed(people, seed, 1005)
    expect(alice.messages).to_have_count(1008, timeout=RECONNECT_TIMEOUT)
    assert alice.ids() == list(range(1, 1009))
    expect(alice.messages.locator(".content")).to_have_text(contents(1, 1008))
    expect(alice.page.get_by_text("Not every missed message is shown")).to_have_count(0)
    scroll_to_beginning(alice)
    assert alice.ids() == list(range(1, 1009))


def test_more_missed_than_the_page_fetches(people, seed):
    """Past 5000 missed messages before the catch-up's own 1000, the page
    starts over from the newest 1000; scrolling up loads the rest."""
    alice = cut_and_seed(people, seed, 6010)
    # The newest 1000, and a word about the rest where the reader is: at
    # the bottom, after the newest message.
    notice = alice.page.locator("#messages > li:last-child")
    expect(notice).to_have_text("Not every missed message is shown: scroll up to load the older ones.")
    expect(notice).to_have_class("notice")
    expect(notice).to_be_in_viewport()
    expect(alice.messages).to_have_count(1000)
    assert alice.ids() == list(range(5014, 6014))
    # What was shown before the gap is gone, so nothing older looks complete.
    expect(alice.marker).to_have_count(0)
