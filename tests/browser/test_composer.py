"""The composer says at once what the server would refuse (a blank message,
one over the length limit, with a counter as the limit nears), and as it
grows, or a line appears under it, the newest message stays in view."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .helpers import after_layout
from .relay import Relay

MAX_CONTENT = 80

pytestmark = [pytest.mark.browser, pytest.mark.server_flags("--max-content", str(MAX_CONTENT))]


def test_blank_and_too_long_are_said_at_once_and_the_newest_stays_in_view_as_it_grows(
    people, axe_violations, artifacts
):
    alice = people(transport="websocket")
    relay = Relay(alice.page)  # what she sends
    alice.page.reload()
    alice.join("alice@example.com")
    bob = people("bob@example.com")
    page = alice.page
    error = page.locator("#composer-error")
    counter = page.locator("#composer-count")

    alice.composer.fill(" \n  ")
    alice.composer.press("Enter")
    expect(error).to_have_text("Nothing to send: write a message first.")
    expect(error).to_have_attribute("role", "alert")
    alice.composer.fill("")
    expect(error).to_be_hidden()

    # Far from the limit: no counter. Near it (90%): the count.
    alice.composer.fill("a" * 71)
    expect(counter).to_be_hidden()
    alice.composer.fill("a" * 75)
    expect(counter).to_have_text("75 / 80")
    expect(error).to_be_hidden()
    # Over it: said at once, before any Enter, and Enter sends nothing.
    alice.composer.press_sequentially("b" * 10)
    expect(counter).to_have_text("85 / 80")
    expect(counter).to_have_class("count over")
    expect(error).to_have_text(
        "Too long to send: a message has at most 80 characters. Shorten it or split it in two."
    )
    expect(alice.composer).to_have_attribute("aria-invalid", "true")
    assert axe_violations(page) == []
    assert "composer-count" in alice.composer.get_attribute("aria-describedby").split()
    alice.composer.press("Enter")
    expect(alice.composer).to_have_value("a" * 75 + "b" * 10)
    # Back under it: fine again, and it goes.
    for _ in range(5):
        alice.composer.press("Backspace")
    expect(error).to_be_hidden()
    expect(counter).to_have_text("80 / 80")
    alice.composer.press("Enter")
    bob.sees("alice@example.com", "a" * 75 + "b" * 5)
    # Characters as the server counts them: 80 emoji are 80, not 160.
    alice.composer.fill("\U0001f600" * MAX_CONTENT)
    expect(counter).to_have_text("80 / 80")
    alice.composer.press("Enter")
    bob.sees("alice@example.com", "\U0001f600" * MAX_CONTENT)
    assert [frame["content"] for frame in relay.frames("message")] == [
        "a" * 75 + "b" * 5,
        "\U0001f600" * MAX_CONTENT,
    ]

    # Her window narrowed to a phone's: the newest message stays in view.
    page.set_viewport_size({"width": 360, "height": 640})
    the_newest_message_stays_in_view_as_the_composer_grows(alice, bob, artifacts)


def newest_in_view(person) -> bool:
    """The last message is wholly inside the list's visible box."""
    return person.page.evaluate("""() => {
      const list = document.getElementById('messages').getBoundingClientRect();
      const items = document.querySelectorAll('#messages li.message');
      const last = items[items.length - 1].getBoundingClientRect();
      return last.top >= list.top - 1 && last.bottom <= list.bottom + 1;
    }""")


def the_newest_message_stays_in_view_as_the_composer_grows(alice, bob, artifacts) -> None:
    """alice (360 px wide) has two messages; bob says 20 more."""
    for i in range(20):
        bob.say(f"message {i:02d}")
    expect(alice.messages).to_have_count(22)
    assert newest_in_view(alice)

    # Six lines: the composer grows, the list shrinks, from the top.
    alice.composer.click()
    for i in range(6):
        alice.page.keyboard.type(f"line {i}")
        alice.page.keyboard.press("Shift+Enter")
    assert alice.composer.evaluate("el => el.getBoundingClientRect().height") > 100
    after_layout(alice.page)
    alice.page.screenshot(path=str(artifacts / "composer-grown.png"))
    assert newest_in_view(alice)
    # A line under the composer: still in view.
    alice.composer.fill("x" * (MAX_CONTENT + 1))
    expect(alice.page.locator("#composer-error")).to_be_visible()
    after_layout(alice.page)
    assert newest_in_view(alice)
    # And what comes next too.
    bob.say("the newest")
    expect(alice.message("the newest")).to_be_in_viewport()
    after_layout(alice.page)
    assert newest_in_view(alice)

    # Scrolled up to read, the view stays where the reader is.
    alice.composer.fill("")
    alice.page.locator("#messages").hover()
    alice.page.mouse.wheel(0, -400)
    expect(alice.page.locator("#jump")).to_be_visible()
    top = alice.page.locator("#messages").evaluate("el => el.scrollTop")
    alice.composer.fill("one\ntwo\nthree\nfour")
    after_layout(alice.page)
    assert alice.page.locator("#messages").evaluate("el => el.scrollTop") == top
    assert not newest_in_view(alice)
