"""Moderation across two server processes sharing Redis or Postgres: an
owner on one process mutes and bans a person connected to the other, who is
refused, closed and kept out there at once; a mute given while they were
away is in their next ``joined``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from chatzilla.accounts import PostgresAccounts, RedisAccounts
from chatzilla.identity import Person, new_person_id
from chatzilla.moderating import PRIVATE_NOW
from chatzilla.signin import digest, new_secret

from .server_process import ROOT
from .sockjs_client import WebSocketClient, XhrPollingClient
from .test_redis import prefix, redis_url, run, servers, shared  # noqa: F401 (fixtures)


async def seed(flags: list[str], email: str, name: str) -> tuple[dict, str]:
    """A person and a session of theirs, kept where the processes keep
    them (as the sign-in pages would); returns their public self and the
    session cookie's value."""
    if flags[0] == "--database-url":
        accounts = PostgresAccounts(flags[1])
    else:
        accounts = RedisAccounts(flags[1], flags[3])
    try:
        person = await accounts.add_person(Person(new_person_id(), email, name))
        secret = new_secret()
        await accounts.add_session(digest(secret), person.id, time.time() + 3600)
    finally:
        await accounts.close()
    return person.public(), secret


def cookie(secret: str) -> dict[str, str]:
    return {"Cookie": f"chatzilla_session={secret}"}


async def until_ref(client, ref: str) -> dict:
    while True:
        frame = await client.recv()
        if frame.get("ref") == ref:
            return frame


def test_a_mute_and_a_ban_given_on_one_process_hold_on_the_other(shared, servers):  # noqa: F811
    one, two = servers([*shared, "--auth", "link"])

    async def scenario():
        a, alice_secret = await seed(shared, "alice@example.com", "Alice")
        b, bob_secret = await seed(shared, "bob@example.com", "Bob")
        alice = await WebSocketClient(one.url, headers=cookie(alice_secret)).connect()
        bob = await XhrPollingClient(two.url, headers=cookie(bob_secret)).connect()
        opened = [alice, bob]
        try:
            await alice.send({"type": "join", "room": "dev"})
            assert (await alice.expect("joined"))["roles"] == {a["id"]: "owner"}
            await bob.send({"type": "join", "room": "dev"})
            assert (await bob.expect("joined"))["roles"] == {a["id"]: "owner"}
            await alice.expect("presence")

            await alice.send({"type": "mute", "person": b["id"], "minutes": 5, "reason": "spam", "ref": "m"})
            assert (await alice.expect("moderated"))["ref"] == "m"
            assert (await bob.expect("moderated"))["action"] == "mute"
            await bob.send({"type": "message", "content": "buy now", "ref": "x"})
            refused = await bob.expect("error")
            assert refused["code"] == "muted" and refused["reason"].endswith(": spam")

            await alice.send({"type": "unmute", "person": b["id"], "ref": "u"})
            assert (await bob.expect("moderated"))["action"] == "unmute"
            await bob.say("sorry", "y")
            assert (await until_ref(alice, "u"))["action"] == "unmute"
            sorry = await alice.expect("message")
            assert sorry["content"] == "sorry"
            # A moderator's delete reaches the other process: the change and who did it.
            await alice.send({"type": "delete", "id": sorry["id"], "reason": "not sorry", "ref": "d"})
            assert (await until_ref(alice, "d"))["deleted"]
            seen = {}
            while len(seen) < 2:
                frame = await bob.recv()
                seen[frame["type"]] = frame
            assert seen["changed"]["deleted"] and seen["moderated"]["reason"] == "not sorry"

            # A report from the other process reaches the moderator here.
            await alice.send({"type": "message", "content": "rules are rules", "ref": "rr"})
            said = await until_ref(alice, "rr")
            assert (await bob.expect("message"))["id"] == said["id"]
            await bob.send({"type": "report", "id": said["id"], "reason": "test", "ref": "rp"})
            reported = await bob.expect("reported")
            heard = await alice.recv()
            while heard["type"] != "report":
                heard = await alice.recv()
            assert (heard["report"], heard["reason"], heard["by"]) == (reported["report"], "test", b)

            # A read-only room, set on one process, holds on the other.
            await alice.send({"type": "rules", "read_only": True, "ref": "ro"})
            assert (await bob.expect("moderated"))["rules"]["read_only"] is True
            await bob.send({"type": "message", "content": "may I?", "ref": "q"})
            assert (await bob.expect("error"))["code"] == "read_only"
            await alice.send({"type": "rules", "read_only": False, "ref": "rw"})
            assert (await bob.expect("moderated"))["rules"]["read_only"] is False
            await until_ref(alice, "rw")

            await alice.send({"type": "ban", "person": b["id"], "reason": "again", "ref": "b"})
            assert (await bob.expect("moderated"))["action"] == "ban"
            closed = await bob.expect("_close")
            assert (closed["code"], closed["reason"]) == (4403, "Banned from this room until lifted: again")
            for url in (two.url, one.url):
                again = await WebSocketClient(url, headers=cookie(bob_secret)).connect()
                opened.append(again)
                await again.send({"type": "join", "room": "dev"})
                assert (await again.expect("error"))["code"] == "banned"

            # Away, then muted, then back on the other process: the join says so.
            await alice.send({"type": "unban", "person": b["id"], "ref": "ub"})
            await until_ref(alice, "ub")
            later = {"type": "mute", "person": b["id"], "minutes": 5, "reason": "later", "ref": "m2"}
            await alice.send(later)
            await until_ref(alice, "m2")
            back = await WebSocketClient(two.url, headers=cookie(bob_secret)).connect()
            opened.append(back)
            await back.send({"type": "join", "room": "dev", "since": 1})
            joined = await back.expect("joined")
            assert joined["muted"]["reason"] == "later"
            assert [m["content"] for m in joined["history"]] == ["rules are rules"]  # "sorry" was id 1
        finally:
            for client in opened:
                await client.close()

    run(scenario(), timeout=60)


def test_an_operators_ban_from_the_command_line_closes_connections_at_once(shared, servers):  # noqa: F811
    one, two = servers([*shared, "--auth", "link"])

    async def scenario():
        _b, bob_secret = await seed(shared, "bob@example.com", "Bob")
        bobs = [
            await WebSocketClient(server.url, headers=cookie(bob_secret)).connect() for server in (one, two)
        ]
        try:
            for bob in bobs:
                await bob.send({"type": "join", "room": "dev"})
                await bob.expect("joined")
            command = [sys.executable, "-m", "chatzilla", "admin", *shared]
            command += ["ban", "dev", "bob@example.com", "--reason", "a deletion request is coming"]
            done = await asyncio.to_thread(subprocess.run, command, cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            for bob in bobs:
                frame = await bob.recv()
                while frame["type"] == "presence":
                    frame = await bob.recv()
                assert frame["type"] == "moderated" and frame["by"]["name"] == "operator"
                closed = await bob.expect("_close")
                assert closed["reason"] == "Banned from this room until lifted: a deletion request is coming"
        finally:
            for bob in bobs:
                await bob.close()

    run(scenario(), timeout=60)


def test_a_private_room_and_its_invitation_links_hold_on_every_process(shared, servers):  # noqa: F811
    one, two = servers([*shared, "--auth", "link"])

    async def scenario():
        a, alice_secret = await seed(shared, "alice@example.com", "Alice")
        _b, bob_secret = await seed(shared, "bob@example.com", "Bob")
        c, carol_secret = await seed(shared, "carol@example.com", "Carol")
        _d, dave_secret = await seed(shared, "dave@example.com", "Dave")
        alice = await WebSocketClient(one.url, headers=cookie(alice_secret)).connect()
        opened = [alice]

        async def on(url: str, secret: str, **join):
            client = await WebSocketClient(url, headers=cookie(secret)).connect()
            opened.append(client)
            await client.send({"type": "join", "room": "dev", "ref": "j", **join})
            frame = await client.recv()
            while frame["type"] != "joined" and frame.get("ref") != "j":
                frame = await client.recv()
            return client, frame

        try:
            await alice.send({"type": "join", "room": "dev"})
            await alice.expect("joined")
            bob, _ = await on(two.url, bob_secret)
            # Carol was here, said something, and went away.
            carol, _ = await on(two.url, carol_secret)
            await carol.send({"type": "message", "content": "see you", "ref": "s"})
            seen = (await until_ref(carol, "s"))["id"]
            await carol.close()
            await alice.send({"type": "message", "content": "while you were away", "ref": "w"})
            await until_ref(alice, "w")

            # Private on one process: Bob, on the other, is closed out there.
            await alice.send({"type": "rules", "private": True, "ref": "p"})
            await until_ref(alice, "p")
            closed = await bob.recv()
            while closed["type"] != "_close":
                closed = await bob.recv()
            assert (closed["code"], closed["reason"]) == (4403, PRIVATE_NOW)
            _, refused = await on(two.url, bob_secret)
            assert refused["code"] == "not_invited"

            # A link made on one process lets Carol in on the other, caught up.
            await alice.send({"type": "invite_link", "ref": "l"})
            link = await until_ref(alice, "l")
            _, refused = await on(two.url, carol_secret, since=seen)
            assert refused["code"] == "not_invited"
            _, joined = await on(two.url, carol_secret, since=seen, invite=link["secret"])
            assert [m["content"] for m in joined["history"]] == ["while you were away"]
            told = await alice.recv()
            while told["type"] != "moderated":
                told = await alice.recv()
            assert (told["action"], told["person"], told["by"]) == ("invite", c, a)

            # Revoked on one process: refused on the other.
            await alice.send({"type": "revoke_link", "id": link["id"], "ref": "r"})
            assert (await until_ref(alice, "r"))["type"] == "link_revoked"
            _, refused = await on(two.url, dave_secret, invite=link["secret"])
            assert refused["code"] == "invalid_invite"
        finally:
            for client in opened:
                await client.close()

    run(scenario(), timeout=60)
