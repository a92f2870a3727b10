"""A line for each day in the conversation, in the reader's time zone."""

from __future__ import annotations

import datetime
import re
import sqlite3
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from .test_chat import ZONE
from .test_messages import classes

pytestmark = pytest.mark.browser


def noon(days_ago: int) -> float:
    """Noon in the browsers' zone, so that a group ten minutes long never
    straddles midnight whenever the suite runs."""
    day = datetime.datetime.now(ZONE).date() - datetime.timedelta(days=days_ago)
    return datetime.datetime.combine(day, datetime.time(12), ZONE).timestamp()


def a_moment_ago() -> float:
    """Five seconds ago, but never before today's midnight in the zone."""
    midnight = datetime.datetime.combine(datetime.datetime.now(ZONE).date(), datetime.time(0), ZONE)
    return max(time.time() - 5, midnight.timestamp())


@pytest.fixture
def server(start_server):
    """A lobby with history over three days (Asia/Kolkata, the browsers'
    zone): written to the database between two runs of the server."""
    first = start_server()
    db_path = first.log_path.parent / "chatzilla.db"
    # Its banner comes once the schema is made and SIGTERM is handled (a
    # clean stop); it serves too.
    with urllib.request.urlopen(first.url + "healthz") as response:
        assert response.status == 200
    first.stop()
    rows = [
        (1, "alice@example.com", "three days ago", noon(3)),
        (2, "alice@example.com", "a minute later", noon(3) + 60),
        (3, "alice@example.com", "ten minutes later", noon(3) + 660),
        (4, "bob@example.com", "yesterday", noon(1)),
        (5, "bob@example.com", "and today", a_moment_ago()),
    ]
    db = sqlite3.connect(db_path)
    with db:
        db.executemany(
            "INSERT INTO messages (room, id, sender, content, ts) VALUES ('lobby', ?, ?, ?, ?)", rows
        )
        db.execute("INSERT INTO rooms (room, last_id) VALUES ('lobby', 5)")
    db.close()
    server = start_server()
    server.seeded = {content: ts for _, _, content, ts in rows}
    return server


def label(ts: float) -> str:
    day = datetime.datetime.fromtimestamp(ts, ZONE)
    return f"{day:%A}, {day.day} {day:%B %Y}"


def test_a_line_for_each_day(people, server):
    carol = people("carol@example.com")
    expect(carol.messages).to_have_count(5)
    expect(carol.marker).to_have_count(1)
    first_ts = server.seeded["three days ago"]
    # Within a day, ten minutes apart is a new group.
    assert classes(carol) == [
        "marker beginning",
        "day:" + label(first_ts),
        "message",
        "message+",
        "message",
        "day:Yesterday",
        "message",
        "day:Today",
        "message",
    ]
    # Each time is the reader's, to the minute; the tooltip has the date.
    first = carol.message("three days ago").locator("time")
    expect(first).to_have_text(datetime.datetime.fromtimestamp(first_ts, ZONE).strftime("%H:%M"))
    expect(first).to_have_attribute("title", re.compile("^" + re.escape(label(first_ts))))

    # A live message today joins today's line; none is added.
    carol.say("live, today")
    assert classes(carol)[-3:] == ["day:Today", "message", "message"]
    assert classes(carol).count("day:Today") == 1


def us_label(ts: float) -> str:
    day = datetime.datetime.fromtimestamp(ts, ZONE)
    return f"{day:%A}, {day:%B} {day.day}, {day:%Y}"


def us_clock(ts: float) -> re.Pattern:
    moment = datetime.datetime.fromtimestamp(ts, ZONE)
    hour = moment.hour % 12 or 12
    return re.compile(rf"^{hour}:{moment:%M}\s?{moment:%p}$")


def test_times_and_dates_in_the_readers_locale(people, server):
    """12 hours and the month first in an en-US browser, 24 hours and the
    day first in an en-GB one: the same messages, each reader's way."""
    us = people("us@example.com", locale="en-US")
    gb = people("gb@example.com", locale="en-GB")
    first_ts = server.seeded["three days ago"]
    for person in (us, gb):
        expect(person.messages).to_have_count(5)
    expect(us.page.locator("#messages li.day").first).to_have_text(us_label(first_ts))
    expect(gb.page.locator("#messages li.day").first).to_have_text(label(first_ts))
    for content, ts in server.seeded.items():
        expect(us.message(content).locator("time")).to_have_text(us_clock(ts))
        expect(gb.message(content).locator("time")).to_have_text(
            datetime.datetime.fromtimestamp(ts, ZONE).strftime("%H:%M")
        )
    expect(us.message("three days ago").locator("time")).to_have_attribute(
        "title", re.compile("^" + re.escape(us_label(first_ts)))
    )
    # Live ones too, and the notices' times.
    gb.say("a live one")
    now = time.time()
    expect(us.message("a live one").locator("time")).to_have_text(re.compile(r"^\d{1,2}:\d\d\s?[AP]M$"))
    assert abs(float(us.message("a live one").get_attribute("data-ts")) - now) < 60
    expect(gb.message("a live one").locator("time")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    people("late@example.com")
    expect(us.page.locator("#messages li.notice time").last).to_have_text(
        re.compile(r"^\d{1,2}:\d\d\s?[AP]M$")
    )
    expect(gb.page.locator("#messages li.notice time").last).to_have_text(re.compile(r"^\d\d:\d\d$"))
