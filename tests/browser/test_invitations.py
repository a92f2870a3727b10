"""Private rooms in Chromium (``--auth link``): the owner makes the room
private, which closes out a member who was there; makes an invitation
link, which someone signed out opens, signs in by mail and is let in with;
invites someone by address from the page; revokes the link, after which it
lets nobody in. Those refused see why, and the header says so.
Screenshots go to the artifacts directory, under issue18/."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from .conftest import DESKTOP
from .test_moderation import linked, mail, notices, shots  # noqa: F401 (fixtures)
from .test_signin import sign_in

pytestmark = pytest.mark.browser

ROOM = "r/team"
NOT_INVITED = re.compile(r"this room is private: ask its owner or a moderator to invite you", re.I)


def test_a_private_room_lets_in_whom_its_owner_invites_by_link_or_address(
    people,
    linked,  # noqa: F811
    mail,  # noqa: F811
    shots,  # noqa: F811
    axe_violations,
):
    olivia = sign_in(people, linked, mail, "olivia@example.com", "Olivia", path=ROOM, viewport=DESKTOP)
    dave = sign_in(people, linked, mail, "dave@example.com", "Dave", path=ROOM, viewport=DESKTOP)
    dave.say("hi, Dave here")
    olivia.sees("Dave", "hi, Dave here")
    expect(olivia.page.locator("#invite-panel")).to_be_hidden()  # a public room needs none

    # Private: Dave, neither invited nor a moderator, is closed out and told why.
    settings = olivia.page.locator("#settings-panel")
    settings.get_by_label("Private: invited people only").check()
    settings.get_by_role("button", name="Save settings").click()
    expect(settings.locator("#settings-state")).to_have_text("Saved")
    expect(dave.page.locator("#composer-error")).to_have_text(NOT_INVITED)
    expect(dave.status).to_have_text("Not invited")
    expect(olivia.page.locator("#people li", has_text="Dave")).to_have_count(0)
    expect(dave.page.locator("#invite-panel")).to_be_hidden()

    # The owner makes a link...
    panel = olivia.page.locator("#invite-panel")
    expect(panel).to_be_visible()
    panel.get_by_role("button", name="Make an invitation link").click()
    link = panel.get_by_label("Invitation link", exact=True)
    expect(link).to_have_value(re.compile(r"/r/team\?invite=[A-Za-z0-9_-]{24}$"))
    expect(panel.locator("#invite-links li")).to_have_count(1)
    olivia.page.screenshot(path=str(shots / "5-an-invitation-link.png"))
    assert axe_violations(olivia.page) == []
    url = urlsplit(link.input_value())

    # ...that Bob, signed out, opens: he signs in by mail and is let in.
    following = f"{ROOM}?{url.query}"
    bob = sign_in(people, linked, mail, "bob@example.com", "Bob", path=following, viewport=DESKTOP)
    expect(bob.page).to_have_url(re.compile(r"/r/team$"))  # the secret is out of the address bar
    bob.say("thanks for the link")
    olivia.sees("Bob", "thanks for the link")
    expect(notices(olivia).filter(has_text="Bob came in with your invitation link")).to_have_count(1)
    bob.page.reload()
    expect(bob.status).to_have_text("Connected")  # invited for good

    # Carol, uninvited, is refused with the reason; then invited by address.
    carol = sign_in(people, linked, mail, "carol@example.com", "Carol", viewport=DESKTOP)
    carol.page.goto(linked.url + ROOM)
    expect(carol.page.locator("#composer-error")).to_have_text(NOT_INVITED)
    expect(carol.status).to_have_text("Not invited")
    carol.page.screenshot(path=str(shots / "6-not-invited.png"))
    panel.get_by_label("Invite by the address they signed in with").fill("carol@example.com")
    panel.get_by_role("button", name="Invite", exact=True).click()
    expect(panel.locator("#invite-state")).to_have_text("Invited Carol.")
    panel.get_by_label("Invite by the address they signed in with").fill("nobody@example.com")
    panel.get_by_role("button", name="Invite", exact=True).click()
    expect(panel.locator("#invite-state")).to_have_text(re.compile(r"^Not done: nobody has signed in"))
    carol.page.reload()
    expect(carol.status).to_have_text("Connected")
    carol.sees("Bob", "thanks for the link")

    # Revoked, the link lets nobody in: Dave tries it.
    panel.get_by_role("button", name="Revoke").click()
    expect(panel.locator("#invite-links li")).to_have_count(0)
    expect(panel.locator("#invite-state")).to_have_text("Link revoked: it lets nobody in any more.")
    dave.page.goto(linked.url + following)
    expect(dave.page.locator("#composer-error")).to_have_text(re.compile(r"revoked, or is for another room"))
    expect(dave.status).to_have_text("Invitation not valid")
    expect(olivia.page.locator("#people li", has_text="Dave")).to_have_count(0)
