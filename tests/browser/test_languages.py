"""People who write right to left: their messages, names and composer
follow the direction of their text (dir="auto", and the page's sides are
logical), whatever the page around them is written in."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MEETING = "הפגישה ב-10:30, בחדר 4."
QUESTION = "מה שלומך?"
DANA = "dana@example.co.il"


def direction(locator) -> str:
    return locator.evaluate("el => el.matches(':dir(rtl)') ? 'rtl' : 'ltr'")


def text_edges(locator) -> dict:
    """Where the text of ``locator`` starts and ends on screen, and its box."""
    return locator.evaluate("""el => {
      const range = document.createRange();
      range.selectNodeContents(el);
      const text = range.getBoundingClientRect();
      const box = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      // The first and the last character, each on its own.
      const node = el.firstChild;
      const first = document.createRange();
      first.setStart(node, 0); first.setEnd(node, 1);
      const last = document.createRange();
      last.setStart(node, node.length - 1); last.setEnd(node, node.length);
      return {left: text.left, right: text.right,
              boxLeft: box.left + parseFloat(style.paddingLeft),
              boxRight: box.right - parseFloat(style.paddingRight),
              firstX: first.getBoundingClientRect().left, lastX: last.getBoundingClientRect().left};
    }""")


def test_right_to_left_text_reads_right_to_left(people, artifacts):
    dana = people(DANA, locale="he-IL")
    bob = people("bob@example.com")
    for text in (MEETING, QUESTION):
        dana.say(text)
    bob.say("And this one is English.")
    for person in (dana, bob):
        expect(person.messages).to_have_count(3)
    dana.composer.click()
    dana.page.keyboard.type("שלום, מה נשמע?")
    expect(bob.typing).to_have_text(f"{DANA} is typing…")
    for person, name in ((bob, "right-to-left.png"), (dana, "right-to-left-writer.png")):
        person.page.mouse.move(0, 0)
        person.page.screenshot(path=str(artifacts / name))

    for person in (bob, dana):
        for text in (MEETING, QUESTION):
            content = person.message(text).locator(".content")
            assert direction(content) == "rtl", text
            # From the right edge of the message, not the left.
            edges = text_edges(content)
            assert abs(edges["right"] - edges["boxRight"]) < 2, (text, edges)
            assert edges["left"] - edges["boxLeft"] > 20, (text, edges)
        # The question mark ends the sentence: on its left.
        edges = text_edges(person.message(QUESTION).locator(".content"))
        assert edges["lastX"] < edges["firstX"], edges
        english = person.message("And this one is English.").locator(".content")
        assert direction(english) == "ltr"
        assert abs(text_edges(english)["left"] - text_edges(english)["boxLeft"]) < 2
    # Her name keeps its own direction, isolated from the Hebrew around it
    # (an address reads left to right; a name may not).
    sender = bob.message(MEETING).locator(".sender")
    expect(sender).to_have_text(DANA)
    expect(sender).to_have_attribute("dir", "auto")
    assert direction(sender) == "ltr"

    # The composer turns right to left with what she types.
    assert direction(dana.composer) == "rtl"
    dana.composer.fill("hello")
    assert direction(dana.composer) == "ltr"
