"""The chat page in Chromium: joining, talking, presence, history, safety."""

from __future__ import annotations

import datetime
import re

import pytest
from playwright.sync_api import expect

from .helpers import wait_until

pytestmark = pytest.mark.browser

#: The contexts' time zone (conftest.TIMEZONE, Asia/Kolkata): UTC+05:30, no DST.
ZONE = datetime.timezone(datetime.timedelta(hours=5, minutes=30))


def check_time(person, content: str) -> None:
    """The message shows HH:MM in the reader's zone, from a server ts of about now."""
    time_el = person.message(content).locator("time.time")
    expect(time_el).to_have_text(re.compile(r"^\d\d:\d\d$"))
    stamp = datetime.datetime.fromisoformat(time_el.get_attribute("datetime").replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - stamp).total_seconds()) < 60, (stamp, now)
    assert time_el.text_content() == stamp.astimezone(ZONE).strftime("%H:%M")


def test_two_people_chat_both_ways_and_a_late_joiner_sees_the_history(people):
    alice = people("alice@example.com")
    bob = people("bob@example.com")

    alice.say("hello bob, this is alice")
    bob.sees("alice@example.com", "hello bob, this is alice")
    alice.sees("alice@example.com", "hello bob, this is alice", mine=True)

    bob.say("hi alice!")
    alice.sees("bob@example.com", "hi alice!")
    bob.sees("bob@example.com", "hi alice!", mine=True)

    # The other person's e-mail is in bold; each side has the same order.
    sender = bob.message("hello bob, this is alice").locator(".sender")
    assert sender.evaluate("el => el.tagName") == "B"
    assert int(sender.evaluate("el => getComputedStyle(el).fontWeight")) >= 700
    for person in (alice, bob):
        expect(person.messages.locator(".content")).to_have_text(["hello bob, this is alice", "hi alice!"])
    check_time(bob, "hello bob, this is alice")
    check_time(alice, "hi alice!")
    check_time(alice, "hello bob, this is alice")

    # Someone joining later sees the history, with senders and times...
    carol = people("carol@example.com")
    expect(carol.messages.locator(".content")).to_have_text(["hello bob, this is alice", "hi alice!"])
    expect(carol.messages.locator(".sender")).to_have_text(["alice@example.com", "bob@example.com"])
    expect(carol.count).to_have_text("3")
    check_time(carol, "hello bob, this is alice")
    # ...going on into live messages, without repeats.
    alice.say("third, carol is here")
    carol.sees("alice@example.com", "third, carol is here")
    expect(carol.messages).to_have_count(3)


def enter_sends_and_shift_enter_inserts_newline(alice, bob) -> None:
    """On an empty conversation: one two-line message from alice, then
    bob's "sentinel"."""
    composer = alice.composer
    composer.click()
    composer.press_sequentially("first line")
    composer.press("Shift+Enter")
    composer.press_sequentially("second line")
    expect(composer).to_have_value("first line\nsecond line")
    expect(alice.messages).to_have_count(0)

    composer.press("Enter")
    expect(composer).to_have_value("")
    for person in (alice, bob):
        expect(person.messages).to_have_count(1)
        content = person.messages.locator(".content")
        assert content.text_content() == "first line\nsecond line"
        # Shown on two lines, not joined into one.
        assert content.evaluate("el => el.offsetHeight > 1.5 * parseFloat(getComputedStyle(el).lineHeight)")
    expect(alice.messages.locator(".sender")).to_have_text("Me")
    expect(bob.messages.locator(".sender")).to_have_text("alice@example.com")

    # Enter on an empty (or blank) composer sends nothing, and says so.
    composer.fill("   ")
    composer.press("Enter")
    expect(alice.page.locator("#composer-error")).to_have_text("Nothing to send: write a message first.")
    bob.say("sentinel")
    for person in (alice, bob):
        expect(person.messages.locator(".content")).to_have_text(["first line\nsecond line", "sentinel"])
    expect(composer).to_have_value("   ")
    composer.fill("")
    expect(alice.page.locator("#composer-error")).to_be_hidden()


def test_a_sent_message_leaves_the_composer_at_once_and_is_pending_until_its_ack(people):
    # WebSocket only: the relay below holds acks on the websocket, and on a
    # loaded machine sockjs-client may otherwise fall back to xhr-streaming.
    alice = people(transport="websocket")
    relay = {"hold": True, "held": [], "page_side": None}

    def route(ws):
        # Sits between the page and the server's SockJS websocket and holds
        # back `sent` acknowledgements while relay["hold"] is set.
        relay["page_side"] = ws
        server_side = ws.connect_to_server()

        def from_server(frame):
            if relay["hold"] and isinstance(frame, str) and '\\"type\\":\\"sent\\"' in frame:
                relay["held"].append(frame)
            else:
                ws.send(frame)

        server_side.on_message(from_server)
        ws.on_message(server_side.send)

    alice.page.route_web_socket(re.compile(r"/chat/[^/]+/[^/]+/websocket$"), route)
    alice.page.reload()
    alice.join("alice@example.com")
    assert alice.transport() == "websocket"
    bob = people("bob@example.com")

    alice.composer.fill("waiting for the ack")
    alice.composer.press("Enter")
    # Out of the composer at once, shown as on its way.
    expect(alice.composer).to_have_value("")
    pending = alice.message("waiting for the ack")
    expect(pending).to_have_class(re.compile(r"\bpending\b"))
    expect(pending.locator(".state")).to_have_text("sending…")
    # Bob has it, so the server stored it; Alice's ack is held back.
    bob.sees("alice@example.com", "waiting for the ack")
    wait_until(alice.page, lambda: relay["held"])
    expect(pending).to_have_class(re.compile(r"\bpending\b"))
    assert pending.get_attribute("data-id") is None

    # The ack arrives: now it shows as Me, with its id and its time.
    relay["hold"] = False
    for frame in relay["held"]:
        relay["page_side"].send(frame)
    alice.sees("alice@example.com", "waiting for the ack", mine=True)
    expect(alice.message("waiting for the ack")).to_have_attribute("data-id", "1")
    expect(alice.pending).to_have_count(0)
    check_time(alice, "waiting for the ack")


def test_enter_shift_enter_and_html_in_messages_is_shown_as_text(people, artifacts):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    enter_sends_and_shift_enter_inserts_newline(alice, bob)
    before = ["first line\nsecond line", "sentinel"]
    nasty = ["<img src=x onerror=alert(1)>", "<b>bold</b>"]

    for text in nasty:
        alice.say(text)
    # Bob's reply quotes the first: as text too, above his composer and in the reply.
    first = bob.message(nasty[0])
    first.locator(".more").click()
    first.get_by_role("button", name="Write a reply to this message").click()
    expect(bob.page.locator("#reply-preview-text .excerpt")).to_have_text(nasty[0])
    bob.say("a reply")  # gives a broken image time to fire its onerror
    alice.sees("bob@example.com", "a reply")

    for person, mine in ((alice, True), (bob, False)):
        for text in nasty:
            person.sees("alice@example.com", text, mine=mine)
        expect(person.messages.locator(".content")).to_have_text([*before, *nasty, "a reply"])
        # No element came out of the text, no dialog, no request for "x".
        assert person.page.locator("#messages img").count() == 0
        assert person.page.locator("#messages .content *").count() == 0
        expect(person.message("a reply").locator(".reply-quote .excerpt")).to_have_text(nasty[0])
        assert person.page.locator("#messages .reply-quote .excerpt *").count() == 0
        assert person.page.locator("img").count() == 0
        assert person.dialogs == []
        assert not [url for url in person.requests if url.rstrip("/").endswith("/x")]

    path = artifacts / "conversation.png"
    alice.page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_address_the_browser_accepts_but_the_server_rejects(people):
    carol = people()
    email = carol.page.locator("#email")
    email.fill("someone@localhost")
    # Chromium's type=email accepts it: the refusal must come from the server.
    assert email.evaluate("el => el.checkValidity()") is True
    carol.page.locator("#join-form button[type=submit]").click()

    error = carol.page.locator("#join-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("the domain needs a dot")
    assert "join-error" in email.get_attribute("aria-describedby").split()
    # The explanation sits by the field, inside the join form, which stays.
    expect(carol.page.locator("#join-form #join-error")).to_be_visible()
    expect(carol.page.locator("#join-form")).to_be_visible()
    expect(carol.page.locator("#chat")).to_be_hidden()
    expect(email).to_have_value("someone@localhost")

    # Correcting the address joins and removes the explanation.
    carol.join("someone@localhost.example")
    expect(error).to_be_hidden()
