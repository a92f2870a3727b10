"""Following the conversation: new messages scroll into view only when the
reader is at the bottom already; scrolled up, a "Jump to latest" button
says how many came in below."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def distance_from_bottom(person) -> float:
    return person.page.locator("#messages").evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight")


def test_follow_at_the_bottom_jump_button_otherwise(people):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    for i in range(25):
        bob.say(f"filler {i:02d}")
    expect(alice.messages).to_have_count(25)
    jump = alice.page.locator("#jump")
    # At the bottom: each new message scrolls into view.
    assert distance_from_bottom(alice) < 5
    expect(jump).to_be_hidden()
    bob.say("followed")
    expect(alice.message("followed")).to_be_in_viewport()
    assert distance_from_bottom(alice) < 5

    # Scrolled up to read: the view stays, the button counts what came.
    alice.page.locator("#messages").hover()
    alice.page.mouse.wheel(0, -600)
    expect(jump).to_be_visible()
    expect(jump).to_have_text("Jump to latest")
    top = alice.page.locator("#messages").evaluate("el => el.scrollTop")
    bob.say("while reading 1")
    bob.say("while reading 2")
    expect(jump).to_have_text("Jump to latest (2 new)")
    assert alice.page.locator("#messages").evaluate("el => el.scrollTop") == top
    expect(alice.message("while reading 2")).not_to_be_in_viewport()

    # The button, by keyboard too, goes to the newest and hides.
    jump.focus()
    alice.page.keyboard.press("Enter")
    expect(alice.message("while reading 2")).to_be_in_viewport()
    expect(jump).to_be_hidden()
    assert distance_from_bottom(alice) < 5
    expect(alice.composer).to_be_focused()

    # Scrolling down by hand to the bottom hides it as well.
    alice.page.mouse.wheel(0, -600)
    expect(jump).to_be_visible()
    alice.page.mouse.wheel(0, 5000)
    expect(jump).to_be_hidden()

    # Her own message always brings her to the bottom.
    alice.page.mouse.wheel(0, -600)
    expect(jump).to_be_visible()
    alice.say("mine")
    expect(alice.message("mine")).to_be_in_viewport()
    expect(jump).to_be_hidden()
