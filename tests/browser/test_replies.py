"""Replying on the page: Reply in a message's menu (⋯) puts who and what it
answers above the composer (its Cancel button or Escape makes it a plain message again);
the sent reply shows a quote of that message, for everyone, which follows
its edits and deletes, and a click on it shows that message, loading older
pages first when it is not in the conversation yet."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

#: Messages in `joined.history` here: the oldest one is not in it.
HISTORY_LIMIT = 10

pytestmark = [pytest.mark.browser, pytest.mark.server_flags("--history-limit", str(HISTORY_LIMIT))]

REPLY = "Write a reply to this message"


def choose(item, action: str) -> None:
    """Opens the message ``item``'s menu (⋯) and clicks ``action`` in it."""
    item.locator(".more").click()
    item.get_by_role("button", name=action, exact=True).click()


def test_reply_to_a_message_and_jump_to_it(people, artifacts, axe_violations):
    bob = people("bob@example.com")
    bob.say("lunch at the Italian place on Friday?")
    for i in range(25):
        bob.say(f"filler {i}")
    alice = people("alice@example.com")
    expect(alice.message("filler 24")).to_have_count(1)
    expect(alice.message("lunch at the Italian place on Friday?")).to_have_count(0)  # not loaded

    # By keyboard: the menu, Reply, the preview; Escape makes it a plain message again.
    alice.message("filler 24").locator(".more").focus()
    alice.page.keyboard.press("Enter")
    reply = alice.message("filler 24").get_by_role("button", name="Write a reply to this message")
    expect(reply).to_be_focused()
    alice.page.keyboard.press("Enter")
    preview = alice.page.locator("#reply-preview")
    expect(preview).to_be_visible()
    expect(preview.locator("#reply-preview-text")).to_have_text("Replying to bob@example.com: filler 24")
    expect(alice.composer).to_be_focused()
    alice.page.keyboard.press("Escape")
    expect(preview).to_be_hidden()
    # And the cancel button, reached by keyboard from the composer.
    choose(alice.message("filler 23"), REPLY)
    expect(preview.locator("#reply-preview-text")).to_have_text("Replying to bob@example.com: filler 23")
    cancel = alice.page.get_by_role("button", name="Cancel the reply")
    alice.composer.press("Shift+Tab")
    expect(cancel).to_be_focused()
    alice.page.keyboard.press("Enter")
    expect(preview).to_be_hidden()
    expect(alice.composer).to_be_focused()

    choose(alice.message("filler 24"), REPLY)
    alice.composer.fill("not for me, thanks")
    alice.composer.press("Enter")
    expect(preview).to_be_hidden()
    mine = alice.message("not for me, thanks")
    expect(mine).to_have_attribute("data-id", re.compile(r"^[0-9]+$"))
    expect(mine.locator(".reply-quote")).to_have_text("In reply to bob@example.com: filler 24")
    theirs = bob.message("not for me, thanks")
    expect(theirs.locator(".reply-quote")).to_have_text("In reply to Me: filler 24")

    # Bob replies to his first message; Alice's page has not loaded it.
    first = bob.message("lunch at the Italian place on Friday?")
    choose(first, REPLY)
    bob.composer.fill("or Saturday")
    bob.composer.press("Enter")
    quote = alice.message("or Saturday").locator(".reply-quote")
    expect(quote).to_have_text("In reply to bob@example.com: lunch at the Italian place on Friday?")

    # The quote follows the original: edited, then deleted.
    edited = bob.message("filler 24")
    choose(edited, "Edit this message")
    edited.locator(".editor textarea").fill("filler 24, edited")
    edited.locator(".editor textarea").press("Enter")
    expect(mine.locator(".reply-quote")).to_have_text("In reply to bob@example.com: filler 24, edited")

    # Alice starts a reply to Bob's: the quotes and the preview, for the docs.
    saturday = alice.message("or Saturday")
    choose(saturday, REPLY)
    alice.composer.fill("Saturday suits me better")
    expect(preview.locator("#reply-preview-text")).to_have_text("Replying to bob@example.com: or Saturday")
    alice.page.screenshot(path=str(artifacts / "replies.png"))
    alice.composer.press("Escape")
    expect(preview).to_be_hidden()
    expect(alice.composer).to_have_value("Saturday suits me better")  # the text stays, a plain message now

    # A click on the quote shows the original, loading older messages to reach it.
    quote.click()
    original = alice.message("lunch at the Italian place on Friday?")
    expect(original).to_have_count(1)
    expect(original).to_be_in_viewport()
    expect(original).to_be_focused()
    expect(original).to_have_class(re.compile(r"\brevealed\b"))
    assert axe_violations(alice.page) == []

    deleted = bob.message("filler 24, edited")
    choose(deleted, "Delete this message")
    deleted.get_by_role("button", name="Delete this message for everyone").click()
    expect(mine.locator(".reply-quote")).to_have_text("In reply to bob@example.com: message deleted")

    # A reload reads the quotes from the server: the same.
    alice.page.reload()
    expect(alice.message("not for me, thanks").locator(".reply-quote")).to_have_text(
        "In reply to bob@example.com: message deleted"
    )
    expect(alice.message("or Saturday").locator(".reply-quote")).to_have_text(
        "In reply to bob@example.com: lunch at the Italian place on Friday?"
    )
