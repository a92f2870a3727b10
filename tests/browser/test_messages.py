"""How messages read: one sender's run of messages grouped, a time on each,
and http/https addresses as links (the rest as text). Day lines: test_days."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def classes(person) -> list[str]:
    """Each item of the list, top to bottom: its kind, "message+" for a
    message in a group (continued), and the day lines' text."""
    return person.page.locator("#messages > li").evaluate_all("""items => items.map(i =>
      i.classList.contains('day') ? 'day:' + i.textContent :
      i.classList.contains('message') ? (i.classList.contains('continued') ? 'message+' : 'message') :
      i.className)""")


def test_consecutive_messages_of_one_sender_are_grouped_and_addresses_are_links(people):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    alice.say("one")
    alice.say("two")
    alice.say("three")
    bob.say("four")
    alice.say("five")
    expect(bob.message("five")).to_have_count(1)

    for person in (alice, bob):
        expect(person.messages).to_have_count(5)
        assert classes(person)[-5:] == ["message", "message+", "message+", "message", "message"]
        # A group shows its avatar and name once; the name is still there
        # for screen readers in every message, and each has its time.
        grouped = person.message("two")
        expect(grouped.locator(".avatar")).to_be_hidden()
        expect(grouped.locator(".sender")).to_have_text("Me" if person is alice else "alice@example.com")
        assert grouped.locator(".sender").evaluate("el => el.getBoundingClientRect().width") <= 1
        expect(person.message("one").locator(".avatar")).to_be_visible()
        expect(person.message("one").locator(".sender")).to_be_visible()
        times = person.messages.locator("time.time")
        expect(times).to_have_count(5)
        for i in range(5):
            expect(times.nth(i)).to_be_visible()
            expect(times.nth(i)).to_have_text(re.compile(r"^\d\d:\d\d$"))
    # The notice of someone arriving breaks a group.
    people("carol@example.com")
    expect(alice.notices).to_have_text(["bob@example.com joined", "carol@example.com joined"])
    alice.say("six")
    alice.say("seven")
    assert classes(alice)[-3:] == ["notice presence", "message", "message+"]

    http_https_and_www_addresses_are_links_and_nothing_else(alice, bob)


LINKS = (
    "see https://example.com/a?b=1&c=2, then (http://example.org/wiki/Foo_(bar)). "
    "Not these: javascript:alert(1) ftp://example.com/x xwww.example.com "
    '<a href="https://evil.example">x</a> https:// and http:// but a bare www.example.com'
)


def http_https_and_www_addresses_are_links_and_nothing_else(alice, bob) -> None:
    alice.say(LINKS)
    bob.sees("alice@example.com", LINKS)
    for person in (alice, bob):
        content = person.message(LINKS).locator(".content")
        expect(content).to_have_text(LINKS)  # every character still there
        links = content.locator("a")
        # The "<a href=...>" is text; only the address in it is a link.
        expect(links).to_have_text(
            [
                "https://example.com/a?b=1&c=2",
                "http://example.org/wiki/Foo_(bar)",
                "https://evil.example",
                "www.example.com",
            ]
        )
        hrefs = links.evaluate_all("links => links.map(a => a.href)")
        assert hrefs == [
            "https://example.com/a?b=1&c=2",
            "http://example.org/wiki/Foo_(bar)",
            "https://evil.example/",
            "https://www.example.com/",
        ]
        for i in range(4):
            expect(links.nth(i)).to_have_attribute("target", "_blank")
            expect(links.nth(i)).to_have_attribute("rel", "noopener noreferrer")
        # Only links and text: no other element came out of the message.
        assert content.locator("*").evaluate_all("els => els.map(e => e.tagName)") == ["A"] * 4


def test_a_link_opens_in_a_new_tab(people):
    alice = people("alice@example.com")
    alice.context.route(
        "https://example.com/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<title>elsewhere</title>"),
    )
    alice.say("look: https://example.com/page")
    with alice.context.expect_page() as opened:
        alice.message("look: https://example.com/page").locator("a").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == "https://example.com/page"
    # No opener for the other site to reach back through.
    assert tab.evaluate("window.opener") is None
    expect(alice.page.locator("#chat")).to_be_visible()  # the chat stays open
    tab.close()
