"""Signing in by e-mail link in Chromium (``--auth link``), with the mail
delivered by SMTP to a real server on loopback (aiosmtpd): ask, receive the
mail, open the link, choose a name, chat; over every SockJS transport (each
really used: transports.py's checks); an impostor who types a signed-in
person's address gets no composer; Leave signs out. Screenshots of each
step go to the artifacts directory, under issue13/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..smtp_server import MailCatcher
from .conftest import DESKTOP, Person
from .transports import RECEIVE, carries_messages_both_ways, load_again_on

ALICE = "alice@example.com"
BOB = "bob@example.com"


@pytest.fixture
def mail():
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def linked(start_server, mail):
    """A server with sign-in by link, mailing through ``mail``."""
    return start_server(
        0,
        "--auth",
        "link",
        "--smtp-url",
        f"smtp://127.0.0.1:{mail.port}",
        "--mail-from",
        "chat@example.org",
        "--allowed-hosts",
        "127.0.0.1,localhost",
    )


@pytest.fixture
def shots(artifacts):
    path = artifacts / "issue13"
    path.mkdir(exist_ok=True)
    return path


def ask(person: Person, email: str) -> None:
    """Types ``email`` in the sign-in form and sends it."""
    page = person.page
    expect(page.locator("#signin")).to_be_visible()
    page.locator("#signin-email").fill(email)
    page.locator("#signin-form button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("Check your mail")


def sign_in(people, server, mail: MailCatcher, email: str, name: str, **kw) -> Person:
    person = people(on=server, **kw)
    ask(person, email)
    person.page.goto(mail.link_for(email))
    person.page.locator("#name").fill(name)
    person.page.locator("#name-form button[type=submit]").click()
    expect(person.page.locator("#chat")).to_be_visible()
    expect(person.status).to_have_text("Connected")
    person.email = email
    return person


def test_the_whole_journey_by_mail(people, linked, mail, shots, browser, axe_violations):
    alice = people(on=linked, viewport=DESKTOP)
    page = alice.page
    # Signed out: a sign-in form, and no composer at all.
    expect(alice.composer).to_be_hidden()
    expect(page.locator("#join-form")).to_be_hidden()
    page.screenshot(path=str(shots / "1-ask.png"))
    assert axe_violations(page) == []
    ask(alice, ALICE)
    page.screenshot(path=str(shots / "2-check-your-mail.png"))
    message = mail.wait_for(ALICE)
    assert message["From"] == "chat@example.org"
    link = mail.link_for(ALICE)
    assert link.startswith(linked.url.rstrip("/") + "/signin/link?t=")
    page.goto(link)
    expect(page.locator("#name")).to_have_value("alice")  # the local part, to start with
    page.locator("#name").fill("Alice Liddell")
    page.screenshot(path=str(shots / "3-choose-a-name.png"))
    assert axe_violations(page) == []
    page.locator("#name-form button[type=submit]").click()
    expect(page).to_have_url(linked.url)
    expect(alice.status).to_have_text("Connected")
    expect(alice.composer).to_be_visible()

    bob = sign_in(people, linked, mail, BOB, "Bob", viewport=DESKTOP)
    expect(alice.people_list).to_have_text(["Alice Liddell", "Bob"])
    alice.say("hello, who is this?")
    bob.sees("Alice Liddell", "hello, who is this?")
    # Bob's answer is a reply: its quote names Alice by name (Me, to her).
    question = bob.message("hello, who is this?")
    question.locator(".more").click()
    question.get_by_role("button", name="Write a reply to this message").click()
    bob.say("Bob, from the mail room")
    alice.sees("Bob", "Bob, from the mail room")
    quoted = "hello, who is this?"
    expect(bob.message("Bob, from the mail room").locator(".reply-quote")).to_have_text(
        f"In reply to Alice Liddell: {quoted}"
    )
    expect(alice.message("Bob, from the mail room").locator(".reply-quote")).to_have_text(
        f"In reply to Me: {quoted}"
    )
    # Ids on hover tell two people of one name apart; no address anywhere.
    sender = alice.message("Bob, from the mail room").locator(".sender")
    expect(sender).to_have_attribute("title", re.compile(r"^Bob · p[0-9a-f]{12}$"))
    for person, other in ((alice, BOB), (bob, ALICE)):
        assert other not in person.page.content()
    expect(alice.page.locator(".unverified")).to_have_count(0)
    alice.page.screenshot(path=str(shots / "4-chatting-by-name.png"))
    assert axe_violations(alice.page) == []
    # The link worked once.
    again = browser.new_context()
    reopened = again.new_page()
    reopened.goto(link)
    expect(reopened.locator("h1")).to_have_text("This link does not work any more")
    again.close()

    # Leave signs this browser out: Bob sees her go, and a reload does not
    # bring her back.
    alice.page.locator("#leave").click()
    expect(alice.page.locator("#signin")).to_be_visible()
    expect(bob.count).to_have_text("1")
    alice.page.reload()
    expect(alice.page.locator("#signin")).to_be_visible()
    expect(alice.composer).to_be_hidden()


def test_every_transport_carries_the_session_cookie_and_messages_both_ways_and_an_impostor_gets_no_composer(
    people, linked, mail, shots, subtests
):
    """Signed in once, alice and bob on each transport in turn, a subtest
    each: their pages loaded again with the next one (requests counted
    afresh), back in by the session cookie alone, chatting both ways over
    that transport only (transports.carries_messages_both_ways)."""
    alice = sign_in(people, linked, mail, ALICE, "Alice")
    bob = sign_in(people, linked, mail, BOB, "Bob")
    for transport in RECEIVE:
        with subtests.test(transport=transport):
            for person in (alice, bob):
                load_again_on(person, linked.url, transport)
            carries_messages_both_ways(alice, bob, transport, ("Alice", "Bob"))

    # Mallory types Alice's address: the link goes to Alice's mailbox, and
    # Mallory gets no composer.
    mailed = len(mail.messages)
    mallory = people(on=linked)
    ask(mallory, ALICE)
    assert len(mail.messages) == mailed + 1 and mail.messages[-1]["To"] == ALICE
    mallory.page.goto(linked.url)
    expect(mallory.page.locator("#signin")).to_be_visible()
    expect(mallory.composer).to_be_hidden()
    expect(mallory.page.locator("#chat")).to_be_hidden()
    mallory.page.screenshot(path=str(shots / "5-impostor-no-composer.png"))
    # And Alice never heard of Mallory.
    expect(alice.count).to_have_text("2")


def test_open_mode_marks_every_sender_unverified(people):
    alice = people(ALICE)
    bob = people(BOB)
    alice.say("hi")
    bob.sees(ALICE, "hi")
    expect(bob.message("hi").locator(".unverified")).to_have_text("unverified")
