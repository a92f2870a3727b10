"""The sign-in stores (chatzilla.accounts) on every backend, and the sign-in
rules over them (chatzilla.signin): links expire, work once and are limited;
sessions and bot tokens; secrets never kept as they are."""

from __future__ import annotations

import logging
import re
import sqlite3

import pytest

from chatzilla.accounts import Link, MemoryAccounts, PostgresAccounts, RedisAccounts, SQLiteAccounts
from chatzilla.identity import Person
from chatzilla.mailer import LogMailer
from chatzilla.signin import LINK_TTL, PER_ADDRESS, PER_CLIENT, AskLimits, SignIn, SignInError, digest

from .helpers import Clock
from .test_redis import prefix, redis_url  # noqa: F401 (fixtures)

ALICE = Person("palice0000001", "alice@example.com", "Alice")


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store_kind(request):
    return request.param


@pytest.fixture
def accounts(request, store_kind, tmp_path, io_loop):
    if store_kind == "memory":
        store = MemoryAccounts()
    elif store_kind == "sqlite":
        store = SQLiteAccounts(str(tmp_path / "chatzilla.db"))
    elif store_kind == "postgres":
        store = PostgresAccounts(request.getfixturevalue("database_url"))
    else:
        store = RedisAccounts(request.getfixturevalue("redis_url"), request.getfixturevalue("prefix"))
    yield store
    io_loop.run_sync(store.close)


@pytest.mark.gen_test
async def test_people_are_found_by_address_and_renamed(accounts):
    assert await accounts.person_by_email(ALICE.email) is None
    assert await accounts.add_person(ALICE) == ALICE
    # A second first sign-in with the same address makes no second person.
    assert await accounts.add_person(Person("pother0000001", ALICE.email, "Eve")) == ALICE
    assert await accounts.rename(ALICE.id, "Alice L.") == Person(ALICE.id, ALICE.email, "Alice L.")
    assert await accounts.person_by_email(ALICE.email) == Person(ALICE.id, ALICE.email, "Alice L.")
    assert await accounts.rename("pnobody", "x") is None


@pytest.mark.gen_test
async def test_a_link_can_be_looked_at_then_taken_once_before_it_expires(accounts):
    link = Link(ALICE.email, "dev", 2000.0)
    await accounts.add_link("d1", link)
    assert await accounts.peek_link("d1", 1000.0) == link
    assert await accounts.peek_link("d1", 1000.0) == link
    assert await accounts.take_link("d1", 1000.0) == link
    assert await accounts.take_link("d1", 1000.0) is None
    assert await accounts.peek_link("d1", 1000.0) is None
    await accounts.add_link("d2", link)
    assert await accounts.peek_link("d2", 2000.0) is None  # expired
    assert await accounts.take_link("d2", 2001.0) is None


@pytest.mark.gen_test
async def test_sessions_and_tokens_name_their_person(accounts):
    await accounts.add_person(ALICE)
    await accounts.add_session("s1", ALICE.id, 5000.0)
    assert await accounts.session_person("s1", 4999.0) == ALICE
    assert await accounts.session_person("s1", 5000.0) is None  # expired
    assert await accounts.session_person("nope", 1.0) is None
    await accounts.drop_session("s1")
    await accounts.drop_session("s1")
    assert await accounts.session_person("s1", 1.0) is None
    await accounts.add_token("t1", ALICE.id, "my bot", 1.0)
    assert await accounts.token_person("t1") == ALICE
    assert await accounts.token_person("t2") is None


# -- the rules ---------------------------------------------------------------


@pytest.fixture
def clock():
    return Clock(1_000_000.0)


@pytest.fixture
def signin(accounts, clock):
    return SignIn(accounts, LogMailer(), session_days=30, clock=clock, limits=AskLimits(clock))


def mailed_secret(caplog, email: str) -> str:
    """The secret of the last link the log mailer wrote for ``email``."""
    lines = [r.getMessage() for r in caplog.records if r.name == "chatzilla.mail"]
    found = re.fullmatch(
        rf"sign-in link for {re.escape(email)}: (http://\S+)/signin/link\?t=(\S+)", lines[-1]
    )
    assert found, lines
    return found.group(2)


@pytest.mark.gen_test
async def test_a_link_signs_in_once_and_the_session_lasts(signin, accounts, clock, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    assert await signin.ask("  alice@EXAMPLE.com ", "10.0.0.1", "dev", "http://chat.test") == ALICE.email
    secret = mailed_secret(caplog, ALICE.email)
    link, person = await signin.link(secret)
    assert (link.email, link.room, person) == (ALICE.email, "dev", None)
    session, person, room = await signin.open_link(secret, " Alice ")
    assert (person.email, person.name, room) == (ALICE.email, "Alice", "dev")
    assert await signin.session(session) == person
    # Used up: neither the landing page nor a second sign-in accepts it.
    for step in (signin.link(secret), signin.open_link(secret, "Eve")):
        with pytest.raises(SignInError) as caught:
            await step
        assert caught.value.code == "link_invalid"
    clock.now += 30 * 86400 - 1
    assert await signin.session(session) == person
    clock.now += 1
    assert await signin.session(session) is None


@pytest.mark.gen_test
async def test_a_link_expires_after_15_minutes(signin, clock, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    await signin.ask(ALICE.email, "10.0.0.1", "lobby", "http://chat.test")
    secret = mailed_secret(caplog, ALICE.email)
    clock.now += LINK_TTL - 1
    await signin.link(secret)
    clock.now += 1
    with pytest.raises(SignInError) as caught:
        await signin.open_link(secret, "Alice")
    assert caught.value.code == "link_invalid"


@pytest.mark.gen_test
async def test_a_bad_name_keeps_the_link_usable_and_a_returning_person_keeps_their_id(signin, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    await signin.ask(ALICE.email, "10.0.0.1", "lobby", "http://chat.test")
    secret = mailed_secret(caplog, ALICE.email)
    with pytest.raises(SignInError) as caught:
        await signin.open_link(secret, "Al\u202eice")
    assert caught.value.code == "invalid_name"
    _, first, _ = await signin.open_link(secret, "Alice")
    await signin.ask(ALICE.email, "10.0.0.1", "lobby", "http://chat.test")
    again = mailed_secret(caplog, ALICE.email)
    assert (await signin.link(again))[1] == first
    _, second, _ = await signin.open_link(again, "Alice Liddell")
    assert (second.id, second.name) == (first.id, "Alice Liddell")


@pytest.mark.gen_test
async def test_links_are_limited_per_address_and_per_client(signin, clock, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    count, window = PER_ADDRESS
    for i in range(count):
        await signin.ask(ALICE.email, f"10.0.0.{i}", "lobby", "http://chat.test")
    with pytest.raises(SignInError) as caught:
        await signin.ask(ALICE.email, "10.0.1.1", "lobby", "http://chat.test")
    assert caught.value.code == "rate_limited" and 0 < caught.value.retry_after <= window / count
    sent = len(caplog.records)
    clock.now += window / count
    await signin.ask(ALICE.email, "10.0.1.1", "lobby", "http://chat.test")
    assert len(caplog.records) == sent + 1
    # One client asking for many addresses.
    count, window = PER_CLIENT
    for i in range(count):
        await signin.ask(f"user{i}@example.com", "10.9.9.9", "lobby", "http://chat.test")
    with pytest.raises(SignInError) as caught:
        await signin.ask("someone@example.com", "10.9.9.9", "lobby", "http://chat.test")
    assert caught.value.code == "rate_limited"


@pytest.mark.gen_test
async def test_look_alike_addresses_get_no_link(signin, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    with pytest.raises(SignInError) as caught:
        await signin.ask("\u0430lice@example.com", "10.0.0.1", "lobby", "http://chat.test")
    assert caught.value.code == "invalid_email" and "mixes scripts" in caught.value.reason
    assert not [r for r in caplog.records if r.name == "chatzilla.mail"]


@pytest.mark.gen_test
async def test_bot_tokens_name_their_person_and_are_kept_as_digests(signin, accounts, store_kind, tmp_path):
    person = await accounts.add_person(ALICE)
    token = await signin.mint_token(person, "weather bot")
    assert token.startswith("czb_") and len(token) > 40
    assert await signin.bot(token) == person
    assert await signin.bot(token[:-1]) is None
    assert await signin.bot(digest(token)) is None
    if store_kind == "sqlite":
        kept = sqlite3.connect(tmp_path / "chatzilla.db").execute("SELECT digest FROM bot_tokens").fetchall()
        assert kept == [(digest(token),)]


@pytest.mark.gen_test
async def test_sign_out_ends_this_session_only(signin, accounts, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    sessions = []
    for _ in range(2):
        await signin.ask(ALICE.email, "10.0.0.1", "lobby", "http://chat.test")
        sessions.append((await signin.open_link(mailed_secret(caplog, ALICE.email), "Alice"))[0])
    await signin.sign_out(sessions[0])
    assert await signin.session(sessions[0]) is None
    assert (await signin.session(sessions[1])).email == ALICE.email


@pytest.mark.gen_test
async def test_one_inbox_has_one_budget_whatever_the_case_of_its_address(signin, caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    count, _window = PER_ADDRESS
    spellings = ["Alice@example.com", "ALICE@example.com", "aLiCe@Example.com", "alice@EXAMPLE.COM"]
    for i, spelling in enumerate(spellings[:count]):
        await signin.ask(spelling, f"10.0.0.{i}", "lobby", "http://chat.test")
    with pytest.raises(SignInError) as caught:
        await signin.ask(spellings[count], "10.0.1.1", "lobby", "http://chat.test")
    assert caught.value.code == "rate_limited"


@pytest.mark.gen_test
async def test_an_ipv6_client_is_counted_by_its_64(signin, caplog):
    """Like every per-address limit: one machine may hold a whole /64."""
    caplog.set_level(logging.INFO, "chatzilla.mail")
    count, _window = PER_CLIENT
    for i in range(count):
        await signin.ask(f"user{i}@example.com", f"2001:db8:1:2::{i + 1:x}", "lobby", "http://chat.test")
    with pytest.raises(SignInError) as caught:
        await signin.ask("someone@example.com", "2001:db8:1:2:ffff::1", "lobby", "http://chat.test")
    assert caught.value.code == "rate_limited"
    await signin.ask("someone@example.com", "2001:db8:1:3::1", "lobby", "http://chat.test")
