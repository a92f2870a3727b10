"""A small Markdown subset on the page, built as elements (never from HTML
strings): *emphasis*, **strong**, `code`, fenced code blocks kept exactly,
block quotes, links; what is not markup (or is HTML) stays as typed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TEXT = (
    "Plan: *soon*, **today**, run `make test` (see www.example.com)\n"
    "> a quote with *em*\n"
    "```\n"
    "def f(x):\n"
    "    return x * 2  # *not em*, <b>not bold</b>\n"
    "```\n"
    "2 * 3 = 6 and <i>no html</i>"
)


def test_markup_becomes_elements_and_the_rest_stays_text(people, artifacts):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    alice.composer.fill(TEXT)
    alice.composer.press("Enter")
    item = bob.messages.last
    expect(item).to_have_attribute("data-id", "1")
    content = item.locator(".content")
    expect(content.locator("em").first).to_have_text("soon")
    expect(content.locator("strong")).to_have_text("today")
    expect(content.locator(":scope > code")).to_have_text("make test")
    expect(content.locator("a")).to_have_text("www.example.com")
    expect(content.locator("a")).to_have_attribute("href", "https://www.example.com/")
    expect(content.locator("blockquote")).to_have_text("a quote with em")
    expect(content.locator("blockquote em")).to_have_text("em")
    code = content.locator("pre code")
    expect(code).to_have_text("def f(x):\n    return x * 2  # *not em*, <b>not bold</b>")
    assert code.evaluate("el => getComputedStyle(el.parentElement).whiteSpace") == "pre"
    # HTML is text: no element the message did not ask for.
    tags = content.locator("*").evaluate_all("els => els.map(e => e.tagName)")
    assert sorted(tags) == sorted(["EM", "STRONG", "CODE", "A", "BLOCKQUOTE", "EM", "PRE", "CODE"])
    expect(content).to_contain_text("2 * 3 = 6 and <i>no html</i>")
    bob.page.screenshot(path=str(artifacts / "formatting.png"))
