"""Moderation in Chromium (``--auth link``): the first person in a new room
owns it (a badge), deletes a spammer's message from its menu and bans the
spammer, who sees why and cannot come back, even by reloading; a member
gets no moderation menu. Screenshots go to the artifacts directory, under
issue18/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..smtp_server import MailCatcher
from .conftest import DESKTOP
from .test_signin import sign_in

pytestmark = pytest.mark.browser

ROOM = "r/spamfree"


@pytest.fixture
def mail():
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def linked(start_server, mail):
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


def notices(person):
    """The moderation notices in the person's conversation."""
    return person.page.locator("#messages li.notice.moderation")


@pytest.fixture
def shots(artifacts):
    path = artifacts / "issue18"
    path.mkdir(exist_ok=True)
    return path


def test_a_moderator_deletes_spam_and_bans_the_spammer_who_sees_why(
    people, linked, mail, shots, axe_violations
):
    olivia = sign_in(people, linked, mail, "olivia@example.com", "Olivia", path=ROOM, viewport=DESKTOP)
    expect(olivia.page).to_have_url(re.compile(r"/r/spamfree$"))
    sam = sign_in(people, linked, mail, "sam@example.com", "Sam", path=ROOM, viewport=DESKTOP)
    carol = sign_in(people, linked, mail, "carol@example.com", "Carol", path=ROOM, viewport=DESKTOP)
    # The room's first person owns it: everyone sees the badge.
    for person in (olivia, sam, carol):
        owner = person.page.locator("#people li", has_text="Olivia")
        expect(owner.locator(".role-badge")).to_have_text("owner")
    # The owner gives the room a topic in its settings; the others see it by its name.
    expect(carol.page.locator("#settings-panel")).to_be_hidden()
    settings = olivia.page.locator("#settings-panel")
    settings.get_by_label("Topic").fill("Pill-free chat")
    settings.get_by_role("button", name="Save settings").click()
    expect(settings.locator("#settings-state")).to_have_text("Saved")
    for person in (olivia, sam, carol):
        expect(person.page.locator("#room-topic")).to_have_text("Pill-free chat")
    sam.say("BUY CHEAP PILLS at spam.example")
    sam.say("really cheap, click now")
    carol.say("hello everyone")
    for person in (olivia, carol):
        person.sees("Sam", "really cheap, click now")

    # Carol reports the spam; the owner alone sees the report, in context.
    reported = carol.message("BUY CHEAP PILLS at spam.example")
    reported.get_by_role("button", name="Report this message to the moderators").click()
    carol.page.get_by_role("textbox", name="Why you report it").fill("pills spam")
    carol.page.get_by_role("button", name="Report it").click()
    expect(reported.locator(".change-state")).to_have_text("reported to the moderators")
    expect(carol.page.locator("#reports-panel")).to_be_hidden()
    expect(sam.page.locator("#reports-panel")).to_be_hidden()
    panel = olivia.page.locator("#reports-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("#reports-count")).to_have_text("1")
    panel.get_by_role("button", name="Show open reports").click()
    report = panel.locator("li.report")
    expect(report).to_have_count(1)
    expect(report.locator("p")).to_have_text("Carol reported Sam: pills spam")
    expect(report.locator(".reported")).to_have_text("Sam: BUY CHEAP PILLS at spam.example")
    olivia.page.screenshot(path=str(shots / "0-a-report-in-context.png"))

    # A member's menu on others' messages offers Reply alone; the owner's moderates too.
    expect(carol.message("really cheap, click now").locator(".more")).to_have_attribute(
        "aria-label", "Reply to this message"
    )
    spam = olivia.message("BUY CHEAP PILLS at spam.example")
    spam.locator(".more").click()
    menu = spam.locator(".message-menu")
    expect(menu.get_by_role("button", name="Ban its sender from this room")).to_be_visible()
    olivia.page.screenshot(path=str(shots / "1-moderator-menu.png"))
    assert axe_violations(olivia.page) == []
    menu.get_by_role("button", name="Delete this message", exact=True).click()
    menu.get_by_role("button", name="Delete this message for everyone").click()
    for person in (olivia, sam, carol):
        expect(person.message("BUY CHEAP PILLS at spam.example")).to_have_count(0)
        expect(person.page.locator("#messages li.message.deleted .content")).to_have_text("message deleted")
    expect(notices(carol).filter(has_text="Olivia deleted a message of Sam")).to_have_count(1)

    # Then the ban, with a reason the spammer is shown.
    more = olivia.message("really cheap, click now")
    more.locator(".more").click()
    more.get_by_role("button", name="Ban its sender from this room").click()
    reason = more.get_by_role("textbox", name="Why they are banned")
    expect(reason).to_be_focused()
    reason.fill("selling pills")
    olivia.page.screenshot(path=str(shots / "2-ban-with-a-reason.png"))
    more.get_by_role("button", name="Ban them from this room").click()
    expect(notices(olivia).filter(has_text="You banned Sam until lifted: selling pills")).to_have_count(1)
    expect(notices(carol).filter(has_text="Olivia banned Sam until lifted: selling pills")).to_have_count(1)
    for person in (olivia, carol):
        expect(person.page.locator("#people li", has_text="Sam")).to_have_count(0)
    reason_shown = re.compile(r"banned from this room until lifted: selling pills", re.I)
    expect(sam.page.locator("#composer-error")).to_have_text(reason_shown)
    expect(sam.status).to_have_text("Banned from this room")  # not "Connected"
    sam.page.screenshot(path=str(shots / "3-the-spammer-sees-why.png"))
    olivia.page.screenshot(path=str(shots / "4-the-room-after.png"))

    panel.get_by_role("button", name=re.compile(r"^Resolve report")).click()
    expect(report).to_have_count(0)
    expect(panel.locator("#reports-count")).to_be_hidden()

    # Sam cannot come back: a reload is refused, saying why again.
    sam.page.reload()
    expect(sam.page.locator("#composer-error")).to_have_text(reason_shown)
    expect(sam.status).to_have_text("Banned from this room")
    expect(olivia.page.locator("#people li", has_text="Sam")).to_have_count(0)
    sam.composer.fill("let me back in")
    sam.composer.press("Enter")
    expect(sam.composer).to_have_value("let me back in")  # kept, and nothing "sending…"
    expect(sam.pending).to_have_count(0)
    expect(carol.message("let me back in")).to_have_count(0)
    carol.say("peace at last")
    olivia.sees("Carol", "peace at last")
    expect(sam.message("peace at last")).to_have_count(0)
