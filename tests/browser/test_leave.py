"""The page remembers the address (localStorage) and joins with it on the
next visit; Leave ends the visit and forgets it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

STORED = "chatzilla.email"


def stored(person):
    return person.page.evaluate(f"localStorage.getItem({STORED!r})")


def test_a_returning_visitor_is_in_at_once_and_one_who_left_can_join_again(people):
    alice = people("Alice@Example.COM")
    bob = people("bob@example.com")
    alice.say("before the reload")
    assert stored(alice) == "Alice@example.com"  # as the server keeps it

    alice.page.reload()
    # No join form: straight into the conversation, as the same person.
    expect(alice.page.locator("#chat")).to_be_visible()
    expect(alice.page.locator("#join-form")).to_be_hidden()
    expect(alice.people_list).to_have_text(["Alice@example.com", "bob@example.com"])
    alice.sees("Alice@example.com", "before the reload", mine=True)
    alice.say("after the reload")
    bob.sees("Alice@example.com", "after the reload")
    # Another tab of hers is one participant still.
    expect(bob.count).to_have_text("2")

    # Leave and join again without a reload: Bob sees her go and come back,
    # and she has a fresh start: the history once, no leftovers.
    alice.page.get_by_role("button", name="Leave").click()
    expect(bob.count).to_have_text("1")
    alice.join("Alice@example.com")
    expect(bob.count).to_have_text("2")
    expect(bob.notices).to_have_text(["Alice@example.com left", "Alice@example.com joined"])
    alice.say("back")
    bob.sees("Alice@example.com", "back")
    expect(alice.messages.locator(".content")).to_have_text(["before the reload", "after the reload", "back"])


def test_leave(people, server):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    alice.say("see you")
    leave = alice.page.get_by_role("button", name="Leave")
    leave.click()

    # Out: the join form (the address still in it), nothing of the
    # conversation left on the page, and the others see her go.
    expect(alice.page.locator("#join-form")).to_be_visible()
    expect(alice.page.locator("#join-note")).to_have_text("You have left the room.")
    expect(alice.page.locator("#chat")).to_be_hidden()
    expect(alice.page.locator("#email")).to_have_value("alice@example.com")
    expect(alice.page.locator("#email")).to_be_focused()
    expect(alice.page.locator("#messages > li")).to_have_count(0)
    expect(alice.people_list).to_have_count(0)
    expect(leave).to_be_hidden()
    expect(bob.notices).to_have_text(["alice@example.com left"], timeout=8_000)
    expect(bob.count).to_have_text("1")
    expect(alice.status).to_have_text("Connected")
    assert stored(alice) is None

    # Not remembered any more: the next visit asks again.
    alice.page.reload()
    expect(alice.page.locator("#join-form")).to_be_visible()
    expect(alice.page.locator("#join-note")).to_be_hidden()
    expect(alice.page.locator("#email")).to_have_value("")
    # And the page works as new: she can join again, as someone else.
    alice.join("carol@example.com")
    expect(alice.messages.locator(".content")).to_have_text(["see you"])
    expect(alice.messages.locator(".sender")).to_have_text(["alice@example.com"])
    alice.say("I am carol now")
    bob.sees("carol@example.com", "I am carol now")
