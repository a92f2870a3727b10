"""The page's layout: a header (room, connection state), the conversation,
the "Who's online" panel, the composer at the bottom; folded for a phone
(360 px), dark when the system is; and the screenshots the README shows."""

from __future__ import annotations

import re
import struct

import pytest
from playwright.sync_api import expect

from .conftest import DESKTOP, PHONE, ROOT
from .pictures import portrait

pytestmark = pytest.mark.browser


def luminance(css_colour: str) -> float:
    """WCAG relative luminance of a computed "rgb(r, g, b)" colour."""
    r, g, b = (int(n) / 255 for n in re.findall(r"\d+", css_colour)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found is not None, locator
    return found


def no_sideways_scrolling(page) -> None:
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_desktop_then_phone_layout_and_dark_mode_follows_the_system(people):
    """alice on a desktop, then her window narrowed to a phone's; bob in
    the dark theme."""
    alice = people("alice@example.com", viewport=DESKTOP)
    bob = people("bob@example.com", color_scheme="dark")
    page = alice.page
    header = page.locator("header.topbar")
    expect(header.locator("#room-name")).to_have_text(people.room)
    expect(header.locator("#status")).to_have_text("Connected")
    expect(header.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator("#presence")).to_have_text("Who's online 2")
    expect(alice.people_list).to_have_text(["alice@example.com", "bob@example.com"])
    expect(page.locator("#people-toggle")).to_be_hidden()
    alice.say("where does this go?")

    # Header on top, then the messages, the typing line and the composer at
    # the bottom of the window; the panel to the right of the conversation.
    top, messages, composer = box(header), box(page.locator("#messages")), box(page.locator("#composer"))
    assert top["y"] == 0
    assert messages["y"] >= top["y"] + top["height"] - 1
    assert composer["y"] >= messages["y"] + messages["height"]
    assert DESKTOP["height"] - (composer["y"] + composer["height"]) < 40
    sidebar = box(page.locator("#sidebar"))
    assert sidebar["x"] >= messages["x"] + messages["width"] - 1
    no_sideways_scrolling(page)

    # Dark mode follows the system: bob's page is dark, alice's light.
    bob.sees("alice@example.com", "where does this go?")
    dark_mode_follows_the_system(alice, bob)

    # On a phone the panel folds into a button.
    page.set_viewport_size(PHONE)
    phone_folds_the_panel_into_a_button(alice)


def phone_folds_the_panel_into_a_button(alice) -> None:
    page = alice.page
    sidebar = page.locator("#sidebar")
    toggle = page.get_by_role("button", name="Who's online: 2")
    expect(sidebar).to_be_hidden()
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#people-toggle-count")).to_have_text("2")
    expect(page.locator("#room-name")).to_be_visible()
    expect(alice.status).to_be_visible()
    # The buttons keep their names for screen readers, as icons.
    expect(page.get_by_role("button", name="Leave")).to_be_visible()
    alice.say(("a long line from a small screen, " * 4).strip())
    no_sideways_scrolling(page)
    for part in ("#messages", "#composer", "header.topbar"):
        found = box(page.locator(part))
        assert found["x"] >= 0 and found["x"] + found["width"] <= PHONE["width"] + 0.5, part

    toggle.click()
    expect(sidebar).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(alice.people_list).to_have_text(["alice@example.com", "bob@example.com"])
    assert sidebar.evaluate("el => el.contains(document.activeElement)")
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")

    # Open again, and a click on the conversation folds it.
    toggle.click()
    expect(sidebar).to_be_visible()
    page.mouse.click(20, PHONE["height"] // 2)
    expect(sidebar).to_be_hidden()


def dark_mode_follows_the_system(light, dark) -> None:
    """``dark``'s page (color_scheme "dark") is dark, ``light``'s light,
    both with enough contrast; a message of ``light``'s is on both."""

    def colours(person) -> tuple[str, str, str]:
        return person.page.evaluate("""() => {
          const body = getComputedStyle(document.body);
          const content = document.querySelector('#messages .content');
          return [body.backgroundColor, body.color, getComputedStyle(content).color];
        }""")

    light_bg, _light_fg, light_text = colours(light)
    dark_bg, dark_fg, dark_text = colours(dark)
    assert luminance(light_bg) > 0.8 and luminance(dark_bg) < 0.05
    assert luminance(dark_fg) > luminance(dark_bg)
    for bg, text in ((light_bg, light_text), (dark_bg, dark_text)):
        assert contrast(bg, text) >= 7, (bg, text)
    # Form controls follow too.
    assert dark.page.evaluate("getComputedStyle(document.documentElement).colorScheme") == "dark"
    field_bg = dark.page.evaluate("getComputedStyle(document.getElementById('message')).backgroundColor")
    assert luminance(field_bg) < 0.05


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def converse(alice, bob, carol) -> None:
    alice.say("Morning! Is the release still on for today?")
    bob.say("Yes. The checklist is at https://example.com/release/checklist")
    bob.say("Two items left: the changelog and the screenshots.")
    carol.say("I can do the changelog after lunch.")
    alice.say("Thanks! I'll take the screenshots.")
    alice.say("Shift+Enter gives\na second line, by the way.")
    for person in (alice, bob, carol):
        expect(person.messages).to_have_count(6)


@pytest.mark.own_server  # the lobby, as the README's copy shows it
def test_screenshots(people, artifacts):
    """Desktop, phone (and its panel) and dark: saved to the artifacts, and
    the desktop one is what the README shows (docs/screenshot.png)."""
    avatars = {"alice@example.com": portrait(), "carol@example.com": portrait((170, 98, 60), (255, 224, 189))}
    alice = people("alice@example.com", viewport=DESKTOP, avatars=avatars)
    bob = people("bob@example.com", viewport=PHONE, avatars=avatars)
    carol = people("carol@example.com", viewport=DESKTOP, color_scheme="dark", avatars=avatars)
    converse(alice, bob, carol)
    # Pictures where Gravatar has one, initials for bob.
    expect(alice.page.locator("#people .avatar.has-photo")).to_have_count(2)
    expect(alice.page.locator('#people li[data-email="bob@example.com"] .avatar img')).to_have_count(0)

    bob.composer.press_sequentially("Great, ship it")
    expect(alice.typing).to_have_text("bob@example.com is typing…")
    expect(carol.typing).to_have_text("bob@example.com is typing…")

    shots = {
        "desktop.png": (alice, DESKTOP),
        "phone.png": (bob, PHONE),
        "dark.png": (carol, DESKTOP),
    }
    for name, (person, viewport) in shots.items():
        person.page.mouse.move(0, 0)  # no message under a hovering pointer
        path = artifacts / name
        person.page.screenshot(path=str(path))
        assert png_size(path) == (viewport["width"], viewport["height"])
        assert path.stat().st_size > 10_000
    bob.page.locator("#people-toggle").click()
    expect(bob.page.locator("#sidebar")).to_be_visible()
    bob.page.screenshot(path=str(artifacts / "phone-panel.png"))
    assert png_size(artifacts / "phone-panel.png") == (PHONE["width"], PHONE["height"])


def test_the_readme_shows_a_desktop_screenshot():
    """docs/screenshot.png is a copy of this module's desktop.png (copied by
    hand when the page changes): at least it has that shot's size."""
    readme = (ROOT / "README.md").read_text()
    assert "![" in readme and "(docs/screenshot.png)" in readme
    assert png_size(ROOT / "docs" / "screenshot.png") == (DESKTOP["width"], DESKTOP["height"])


#: The narrowest phones: nothing may be wider than this.
NARROWEST = {"width": 320, "height": 640}
#: 62 characters, all allowed in a room name, no place to break.
LONG_ROOM = "quarterly-planning-for-the-platform-and-infrastructure-teams-xx"[:62]

#: Every element that shows outside the viewport sideways, after the
#: clipping of its scrolling or overflow-hidden ancestors.
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) { continue; }
    let left = box.left, right = box.right;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (style.overflowX !== 'visible' || style.clipPath !== 'none') {
        const clip = up.getBoundingClientRect();
        left = Math.max(left, clip.left);
        right = Math.min(right, clip.right);
      }
    }
    if (right - left > 0.5 && (right > width + 0.5 || left < -0.5)) {
      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + el.className
               + ' ' + Math.round(left) + '..' + Math.round(right));
    }
  }
  return out;
}"""


def nothing_sticks_out(page) -> None:
    assert page.evaluate(STICKING_OUT) == []
    no_sideways_scrolling(page)


def test_nothing_is_wider_than_a_320_px_screen(people, artifacts):
    assert len(LONG_ROOM) == 62
    long_address = "jean-baptiste.emmanuel.zorg-the-third@subdomain.example-company.com"
    alice = people(viewport=NARROWEST, path="r/" + LONG_ROOM)
    alice.page.screenshot(path=str(artifacts / "narrow-320-join.png"))
    nothing_sticks_out(alice.page)
    alice.join(long_address)
    bob = people("bob@example.com", path="r/" + LONG_ROOM)
    bob.say("https://example.com/a/very/long/address/that/has/no/spaces/in/it/at/all/anywhere/x")
    bob.say("Supercalifragilisticexpialidocious-and-then-some-more-letters-without-a-break")
    alice.say("Short answer.")
    bob.composer.press_sequentially("typing")
    expect(alice.typing).to_contain_text("is typing")
    alice.page.locator("#messages").hover()
    alice.page.mouse.wheel(0, -300)
    alice.composer.fill("x " * 1100)  # over the limit: the counter and the error
    expect(alice.page.locator("#composer-error")).to_be_visible()
    alice.page.mouse.move(0, 0)
    alice.page.screenshot(path=str(artifacts / "narrow-320-chat.png"))
    expect(alice.page.locator("#room-name")).to_have_text(LONG_ROOM)
    expect(alice.status).to_be_visible()
    nothing_sticks_out(alice.page)
    alice.page.locator("#people-toggle").click()
    expect(alice.page.locator("#sidebar")).to_be_visible()
    alice.page.screenshot(path=str(artifacts / "narrow-320-panel.png"))
    nothing_sticks_out(alice.page)
    # And the header's buttons are all on screen, whole.
    for name in ("Leave", "Notify me"):
        found = box(alice.page.get_by_role("button", name=name))
        assert found["x"] >= 0 and found["x"] + found["width"] <= NARROWEST["width"], name
