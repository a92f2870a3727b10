"""Avatars: the person's Gravatar (SHA-256 of the trimmed, lower-cased
address, d=404) when it loads, and initials on a colour derived from the
address whenever it does not: offline, no picture, no crypto.subtle."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from .conftest import GRAVATAR, gravatar_hash
from .helpers import wait_until
from .pictures import portrait

pytestmark = pytest.mark.browser


def avatar_of(person, email: str):
    return person.page.locator(f'#people li[data-email="{email}"] .avatar')


def test_offline_every_avatar_is_initials_on_a_colour(people):
    alice = people("alice@example.com")
    bob = people("Jean-Luc.Picard@example.com")
    alice.say("hello")
    bob.sees("alice@example.com", "hello")
    for person in (alice, bob):
        expect(avatar_of(person, "alice@example.com").locator(".initials")).to_have_text("A")
        expect(avatar_of(person, "Jean-Luc.Picard@example.com").locator(".initials")).to_have_text("JL")
        expect(person.page.locator(".avatar img")).to_have_count(0)
        expect(person.message("hello").locator(".avatar .initials")).to_have_text("A")
    # The same colour for the same address on every page, and white
    # initials that stand out from it.
    colour = avatar_of(alice, "alice@example.com").evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == avatar_of(bob, "alice@example.com").evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert colour == alice.message("hello").locator(".avatar").evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert (
        avatar_of(alice, "alice@example.com").evaluate("el => getComputedStyle(el).color")
        == "rgb(255, 255, 255)"
    )
    colours = set(
        alice.page.evaluate(
            "async emails => (await import('/static/js/view/avatars.js')).colourIndex && "
            "emails.map((await import('/static/js/view/avatars.js')).colourIndex)",
            [f"person{i}@example.com" for i in range(40)],
        )
    )
    assert len(colours) >= 8  # spread over the palette
    # Each address's picture was asked for once, however many avatars show it.
    alice.say("again")
    expect(alice.page.locator("#messages .avatar")).to_have_count(2)
    assert len(alice.gravatar_requests) == 2
    # Those failures are expected: they are not page errors.
    assert alice.avatar_errors and alice.console_errors == []


def test_the_gravatar_url(people):
    alice = people("  Alice.Smith@Example.COM ")
    expect(alice.people_list).to_have_text(["Alice.Smith@example.com"])
    wait_until(alice.page, lambda: alice.gravatar_requests)
    assert len(alice.gravatar_requests) == 1
    url = urlsplit(alice.gravatar_requests[0])
    assert f"{url.scheme}://{url.netloc}/avatar/" == GRAVATAR
    # The hash of the address trimmed and lower-cased, whatever was typed.
    assert url.path.rsplit("/", 1)[1] == gravatar_hash("alice.smith@example.com")
    assert re.fullmatch(r"[0-9a-f]{64}", url.path.rsplit("/", 1)[1])
    assert parse_qs(url.query)["d"] == ["404"]


def test_a_gravatar_that_loads_covers_the_initials(people):
    pictures = {"alice@example.com": portrait()}
    alice = people("alice@example.com", avatars=pictures)
    bob = people("bob@example.com", avatars=pictures)
    alice.say("with a picture")
    bob.say("without one")
    for person in (alice, bob):
        with_picture = avatar_of(person, "alice@example.com")
        expect(with_picture).to_have_class(re.compile(r"\bhas-photo\b"))
        photo = with_picture.locator("img")
        expect(photo).to_have_attribute("alt", "")
        expect(photo).to_have_attribute("src", re.compile("^" + re.escape(GRAVATAR)))
        assert photo.evaluate("img => img.complete && img.naturalWidth") == 80
        # It covers the initials.
        assert photo.bounding_box() == with_picture.bounding_box()
        expect(person.message("with a picture").locator(".avatar img")).to_have_count(1)
        # Bob has no picture (Gravatar's 404): initials.
        expect(avatar_of(person, "bob@example.com").locator("img")).to_have_count(0)
        expect(avatar_of(person, "bob@example.com").locator(".initials")).to_be_visible()


def test_without_crypto_subtle_no_gravatar_is_asked_for(people):
    # Plain http on another host than localhost is not a secure context:
    # there is no crypto.subtle there, and so no Gravatar.
    alice = people()
    alice.context.add_init_script("Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined})")
    alice.page.reload()
    alice.join("alice@example.com")
    alice.say("initials only")
    expect(alice.message("initials only").locator(".avatar .initials")).to_have_text("A")
    alice.page.wait_for_timeout(200)
    assert alice.gravatar_requests == []
