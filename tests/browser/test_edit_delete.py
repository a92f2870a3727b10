"""Editing and deleting one's own messages on the page: the message's menu
(⋯) offers Edit and Delete for one's own messages only (Reply for all); an edit shows
"(edited)" with its time, a delete "message deleted", for everyone at once,
and for a page that was offline meanwhile once it is back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [
    pytest.mark.browser,
    # The offline page notices at the next heartbeat (see test_catch_up).
    pytest.mark.server_flags("--heartbeat-delay", "1"),
]

RECONNECT_TIMEOUT = 15_000


def test_edit_and_delete_your_own_messages_and_catch_up_on_them(people, artifacts):
    people.allow_network_errors = True  # requests refused while Carol is offline
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    carol = people("carol@example.com", transport="xhr-polling")
    alice.say("helo everyone")
    alice.say("a message to take back")
    bob.say("hi Alice")
    for person in (bob, carol):
        person.sees("alice@example.com", "a message to take back")
    carol.sees("bob@example.com", "hi Alice")

    # Others' messages' menus offer Reply alone; one's own Edit and Delete too.
    expect(alice.message("hi Alice").locator(".more")).to_have_attribute(
        "aria-label", "Reply to this message"
    )
    expect(bob.message("helo everyone").locator(".more")).to_have_attribute(
        "aria-label", "Reply to this message"
    )

    # Carol goes offline and misses both changes.
    carol.context.set_offline(True)
    expect(carol.status).to_have_text("Reconnecting…")

    mine = alice.message("helo everyone")
    mine.locator(".more").click()
    mine.get_by_role("button", name="Edit this message").click()
    box = mine.locator(".editor textarea")
    expect(box).to_be_focused()
    expect(box).to_have_value("helo everyone")
    box.fill("hello everyone")
    box.press("Enter")
    edited = alice.message("hello everyone")
    expect(edited.locator(".edited")).to_have_text("(edited)")
    expect(edited.locator(".edited")).to_have_attribute("title", re.compile(r"^edited "))
    expect(edited.locator(".change-state")).to_have_count(0)
    expect(bob.message("hello everyone").locator(".edited")).to_have_text("(edited)")
    expect(bob.message("helo everyone")).to_have_count(0)

    gone = alice.message("a message to take back")
    gone.locator(".more").click()
    gone.get_by_role("button", name="Delete this message", exact=True).click()
    expect(gone.locator(".message-menu")).to_contain_text("Delete this message for everyone?")
    gone.get_by_role("button", name="Delete this message for everyone").click()
    for person in (alice, bob):
        expect(person.message("a message to take back")).to_have_count(0)
        deleted = person.page.locator("#messages li.message.deleted")
        expect(deleted).to_have_count(1)
        expect(deleted.locator(".content")).to_have_text("message deleted")
    expect(alice.page.locator("#messages li.message.deleted .more")).to_have_count(0)

    # Back online: the page caught up on both changes to messages it had.
    carol.context.set_offline(False)
    expect(carol.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT)
    expect(carol.message("hello everyone").locator(".edited")).to_have_text("(edited)")
    expect(carol.message("helo everyone")).to_have_count(0)
    expect(carol.page.locator("#messages li.message.deleted .content")).to_have_text("message deleted")
    expect(carol.messages.locator(".content")).to_have_text(["hello everyone", "message deleted", "hi Alice"])

    # A reload shows the same: the changes are stored.
    bob.page.reload()  # joins again at once: the page remembers the address
    expect(bob.messages.locator(".content")).to_have_text(["hello everyone", "message deleted", "hi Alice"])

    alice.message("hello everyone").locator(".more").click()
    alice.page.screenshot(path=str(artifacts / "edit-delete.png"))


def test_edits_cancelled_refused_or_from_markup_and_reactions_taken_back(people, artifacts):
    """alice and bob: edits (an_edit_can_be_cancelled_and_an_empty_one_is_refused_at_once,
    an_edit_starts_from_the_text_as_typed_with_its_markup), then reactions."""
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    an_edit_can_be_cancelled_and_an_empty_one_is_refused_at_once(alice, bob)
    an_edit_starts_from_the_text_as_typed_with_its_markup(alice)
    alice.say("lunch at noon?")
    bob.sees("alice@example.com", "lunch at noon?")

    question = bob.message("lunch at noon?")
    question.get_by_role("button", name="Add a reaction").click()
    question.get_by_role("button", name="React with 👍").click()
    expect(question.locator(".picker")).to_have_count(0)
    theirs = alice.message("lunch at noon?").locator(".reaction")
    expect(theirs).to_have_text(["👍 1"])
    expect(theirs).to_have_attribute("aria-pressed", "false")
    expect(theirs).to_have_attribute("title", "bob@example.com")

    # Alice adds hers to Bob's 👍, and any emoji through the box.
    theirs.click()
    expect(theirs).to_have_text(["👍 2"])
    expect(theirs).to_have_attribute("aria-pressed", "true")
    mine = alice.message("lunch at noon?")
    mine.get_by_role("button", name="Add a reaction").click()
    mine.get_by_role("textbox", name="Any emoji").fill("🍕")
    mine.get_by_role("textbox", name="Any emoji").press("Enter")
    expect(question.locator(".reaction")).to_have_text(["👍 2", "🍕 1"])
    expect(question.locator(".reaction").first).to_have_attribute(
        "title", "bob@example.com, alice@example.com"
    )
    alice.page.screenshot(path=str(artifacts / "reactions.png"))

    # Not an emoji: refused, and said.
    mine.get_by_role("button", name="Add a reaction").click()
    mine.get_by_role("textbox", name="Any emoji").fill("yes")
    mine.get_by_role("textbox", name="Any emoji").press("Enter")
    expect(alice.page.locator("#composer-error")).to_contain_text("emoji")

    # Bob takes his back.
    question.locator(".reaction", has_text="👍").click()
    expect(alice.message("lunch at noon?").locator(".reaction")).to_have_text(["👍 1", "🍕 1"])
    expect(question.locator(".reaction").first).to_have_attribute("aria-pressed", "false")


def an_edit_can_be_cancelled_and_an_empty_one_is_refused_at_once(alice, bob) -> None:
    alice.say("keep me")
    mine = alice.message("keep me")
    mine.locator(".more").click()
    mine.get_by_role("button", name="Edit this message").click()
    mine.locator(".editor textarea").fill("   ")
    mine.locator(".editor textarea").press("Enter")
    expect(mine.locator(".change-state")).to_contain_text("cannot be empty")
    mine.locator(".editor textarea").press("Escape")
    expect(mine.locator(".editor")).to_have_count(0)
    expect(mine.locator(".content")).to_have_text("keep me")
    expect(mine.locator(".content")).to_be_visible()
    expect(mine.locator(".edited")).to_have_count(0)
    expect(bob.message("keep me").locator(".edited")).to_have_count(0)


def an_edit_starts_from_the_text_as_typed_with_its_markup(alice) -> None:
    alice.composer.fill("**bold** and `code`")
    alice.composer.press("Enter")
    mine = alice.message("bold and code")  # as shown
    expect(mine).to_have_attribute("data-id", re.compile(r"^[0-9]+$"))
    mine.locator(".more").click()
    mine.get_by_role("button", name="Edit this message").click()
    box = mine.locator(".editor textarea")
    expect(box).to_have_value("**bold** and `code`")  # saved as it is, it changes nothing
    box.fill("**bold** and `code`!")
    box.press("Enter")
    expect(alice.message("bold and code!").locator("strong")).to_have_text("bold")
    alice.message("bold and code!").locator(".more").click()
    alice.message("bold and code!").get_by_role("button", name="Edit this message").click()
    expect(alice.message("bold and code!").locator(".editor textarea")).to_have_value("**bold** and `code`!")
    alice.message("bold and code!").locator(".editor textarea").press("Escape")
