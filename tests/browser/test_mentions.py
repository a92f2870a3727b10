"""Mentions: "@" in the composer offers the room's people, the chosen name
goes in as "@name "; a mention is marked for everyone, strongly (and the
whole message) for the person mentioned."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_mention_someone_by_picking_their_name(people, artifacts):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    carol = people("carol@example.com")
    expect(bob.count).to_have_text("3")
    picker = bob.page.locator("#mention-list")
    bob.composer.press_sequentially("lunch, @a")
    expect(picker.get_by_role("option")).to_have_text(["alice@example.com"])
    expect(bob.composer).to_have_attribute("aria-activedescendant", "mention-list-0")
    bob.composer.press("Escape")
    expect(picker).to_be_hidden()
    bob.composer.press("Backspace")
    bob.composer.press("Backspace")
    bob.composer.press_sequentially("@")
    # Everyone but Bob himself, in arrival order.
    expect(picker.get_by_role("option")).to_have_text(["alice@example.com", "carol@example.com"])
    bob.composer.press("ArrowDown")
    expect(picker.get_by_role("option").nth(1)).to_have_attribute("aria-selected", "true")
    bob.composer.press("ArrowUp")
    bob.composer.press("Enter")  # picks, does not send
    expect(bob.composer).to_have_value("lunch, @alice@example.com ")
    expect(picker).to_be_hidden()
    bob.composer.press_sequentially("are you in?")
    bob.composer.press("Enter")
    text = "lunch, @alice@example.com are you in?"
    for person in (alice, bob, carol):
        mention = person.message(text).locator(".mention")
        expect(mention).to_have_text("@alice@example.com")
    expect(alice.message(text).locator(".mention")).to_have_class(re.compile(r"\bme\b"))
    expect(alice.message(text)).to_have_class(re.compile(r"\bmentions-me\b"))
    for person in (bob, carol):
        expect(person.message(text)).not_to_have_class(re.compile(r"\bmentions-me\b"))
        expect(person.message(text).locator(".mention")).not_to_have_class(re.compile(r"\bme\b"))
    alice.page.screenshot(path=str(artifacts / "mentions.png"))
