"""Searching the room on the page: the Search box in the side panel, the
results newest first, each the part of its message around the words found,
marked, "Older results", and a click that shows the message in the
conversation, loading older messages first when it is not shown yet."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

#: Messages in `joined.history` here: the oldest match is not in it.
HISTORY_LIMIT = 10

pytestmark = [pytest.mark.browser, pytest.mark.server_flags("--history-limit", str(HISTORY_LIMIT))]


LONG = (
    "Minutes of the planning meeting: we went through the budget line by line, the new hires, "
    "the office move and the holiday rota, and then somebody asked about the pizzeria "
    "near the station, which everybody seemed to like, so it is settled for the team "
    "outing; the rest of the meeting was about the roadmap for next year."
)


def test_search_and_jump_to_a_message(people, artifacts):
    bob = people("bob@example.com")
    bob.say(LONG)
    bob.say("lunch at the Italian place on Friday?")
    for i in range(30):
        bob.say(f"filler {i}")
    for i in range(25):
        bob.say(f"lunch option {i}")
    alice = people("alice@example.com")
    expect(alice.message("lunch option 24")).to_have_count(1)
    expect(alice.message("lunch at the Italian place on Friday?")).to_have_count(0)  # not loaded

    alice.page.locator("#search-input").fill("Lunch")
    alice.page.locator("#search-input").press("Enter")
    results = alice.page.locator("#search-results .result")
    expect(results).to_have_count(20)
    expect(results.first.locator(".text")).to_have_text("lunch option 24")
    expect(results.first.locator(".text mark")).to_have_text("lunch")
    expect(results.first.locator("b")).to_have_text("bob@example.com")
    expect(alice.page.locator("#search-status")).to_have_text("20+ found, newest first.")
    alice.page.get_by_role("button", name="Older results").click()
    expect(results).to_have_count(26)
    expect(results.last.locator(".text")).to_have_text("lunch at the Italian place on Friday?")
    expect(alice.page.get_by_role("button", name="Older results")).to_be_hidden()
    alice.page.screenshot(path=str(artifacts / "search.png"))

    # The oldest is not in the conversation yet: older messages load until it is.
    results.last.click()
    first = alice.message("lunch at the Italian place on Friday?")
    expect(first).to_have_count(1)
    expect(first).to_be_in_viewport()
    expect(first).to_be_focused()
    expect(first).to_have_class(re.compile(r"\brevealed\b"))

    # A long message: the part around the word found, cut at words, marked.
    alice.page.locator("#search-input").fill("Pizz")
    alice.page.locator("#search-input").press("Enter")
    expect(results).to_have_count(1)
    expect(results.first.locator(".text mark")).to_have_text("pizzeria")
    excerpt = results.first.locator(".text").inner_text()
    assert excerpt.startswith("…") and excerpt.endswith("…"), excerpt
    assert "pizzeria near the station" in excerpt and len(excerpt) < len(LONG) / 2 + 20, excerpt
    alice.page.screenshot(path=str(artifacts / "search-excerpt.png"))

    alice.page.locator("#search-input").fill("nothing like this")
    alice.page.locator("#search-input").press("Enter")
    expect(alice.page.locator("#search-status")).to_have_text("No messages found.")
    expect(results).to_have_count(0)
    alice.page.locator("#search-input").fill("?!")
    alice.page.locator("#search-input").press("Enter")
    expect(alice.page.locator("#search-status")).to_contain_text("at least one word")
