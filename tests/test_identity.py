"""Address and name rules, public ids and avatars (chatzilla.identity), and
the look-alike addresses every mode refuses, over a real connection too."""

from __future__ import annotations

import json

import pytest

from chatzilla import identity
from chatzilla.identity import IdentityError, Person, check_address, check_name, public_of
from chatzilla.protocol import ProtocolError, normalize_email


def refused_address(raw: str) -> str:
    with pytest.raises(ProtocolError) as caught:
        normalize_email(raw)
    assert caught.value.code == "invalid_email"
    return caught.value.reason


@pytest.mark.parametrize(
    "raw, says",
    [
        ("\u0430lice@example.com", "mixes scripts before the @ (Cyrillic, Latin)"),  # a Cyrillic a
        ("alice@ex\u0430mple.com", "mixes scripts in the domain label"),
        (
            "alice@xn--exmple-4nf.com",
            "mixes scripts in the domain label",
        ),  # example with a Cyrillic a, as punycode
        ("p\u03b1ypal@example.com", "mixes scripts before the @ (Greek, Latin)"),  # a Greek alpha
        ("alice\u200b@example.com", "U+200B ZERO WIDTH SPACE"),
        ("al\u200dice@example.com", "U+200D ZERO WIDTH JOINER"),
        ("alice@exam\u00adple.com", "U+00AD SOFT HYPHEN"),
        ("\ufeffalice@example.com", "U+FEFF"),
        ("\u202emoc.elpmaxe@liam.ecila", "bidi control character (U+202E RIGHT-TO-LEFT OVERRIDE)"),
        ("alice\u2066@example.com", "bidi control character (U+2066"),
        ("alice\u200f@example.com", "bidi control character (U+200F"),
        ("\uff41lice@example.com", "compatibility character"),  # full-width a
        ("\U0001d41alice@example.com", "compatibility character"),  # mathematical bold a
        ("alice\ue000@example.com", "U+E000"),  # private use
        ("alice\u0378@example.com", "U+0378"),  # unassigned
    ],
)
def test_look_alike_addresses_are_refused_with_a_reason(raw, says):
    assert says in refused_address(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "alice@example.com",
        "jos\u00e9@example.com",
        "\u5c71\u7530\u592a\u90ce@\u4f8b\u3048.jp",  # Han and Hiragana: one language
        "yamada\u592a\u90ce@example.com",  # Latin with Han
        "\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@\u03c0\u03b1\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3\u03bc\u03b1.gr",
        "\u0438\u0432\u0430\u043d@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444",  # all Cyrillic
        "user+tag-1@sub.example.org",
    ],
)
def test_addresses_in_one_script_are_accepted(raw):
    assert normalize_email(raw) == raw


def test_addresses_are_kept_in_nfc():
    assert normalize_email("jose\u0301@example.com") == "jos\u00e9@example.com"


def test_names_are_nfc_with_white_space_made_one_space():
    assert check_name("  Jose\u0301   Mar\u00eda\t ") == "Jos\u00e9 Mar\u00eda"
    assert check_name("Alice\u2028Bob\n") == "Alice Bob"
    assert check_name("\u5c71\u7530 Alice") == "\u5c71\u7530 Alice"


@pytest.mark.parametrize(
    "raw, says",
    [
        ("", "required"),
        ("   ", "required"),
        ("x" * 41, "at most 40"),
        ("Alice\u202e", "bidi control"),
        ("Al\u200bice", "U+200B"),
        ("Al\x07ice", "U+0007"),
        ("Alice\x1b", "U+001B"),
        ("\u3164", "invisible character (U+3164"),
        ("Alice\u3164", "U+3164"),
        ("\u2800", "U+2800"),
        ("Al\u034fice", "U+034F"),
        ("\u115f\u1160", "U+115F"),
        ("Me", "own messages"),
        (" ME ", "own messages"),
        ("\uff2d\uff45", "own messages"),  # full-width
        ("\u041c\u0435", "own messages"),  # Cyrillic
    ],
)
def test_bad_names_are_refused(raw, says):
    with pytest.raises(IdentityError) as caught:
        check_name(raw)
    assert says in caught.value.reason


def test_default_name_is_the_local_part():
    assert identity.default_name("jean.luc@example.com") == "jean.luc"
    assert len(identity.default_name("x" * 60 + "@example.com")) == identity.MAX_NAME


def test_public_ids_are_fresh_and_say_nothing_of_the_address():
    ids = {identity.new_person_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("p") and len(i) == 13 for i in ids)


def test_a_person_shows_id_name_and_avatar_never_the_address():
    alice = Person("p123", "Alice@Example.com", "Alice")
    seen = alice.public()
    assert set(seen) == {"id", "name", "avatar"}
    # Gravatar's key: SHA-256 of the trimmed, lower-cased address.
    assert seen["avatar"] == (
        "https://www.gravatar.com/avatar/"
        "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976?s=80&d=404"
    )
    assert "example" not in alice.key().lower()
    assert public_of(alice.key()) == seen


def test_an_address_as_a_key_is_shown_as_unverified_not_as_the_address():
    assert public_of("alice@example.com") == {"id": "", "name": "unverified", "avatar": ""}


def test_check_address_alone():
    with pytest.raises(IdentityError):
        check_address("\u0430lice@example.com")


LOOK_ALIKES = {
    "cyrillic-a": "\u0430lice@example.com",
    "zero-width-space": "alice\u200b@example.com",
    "right-to-left-override": "\u202emoc.elpmaxe@liam.ecila",
}


@pytest.mark.parametrize("email", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
@pytest.mark.gen_test
async def test_a_look_alike_join_is_refused_and_the_room_hears_nothing(connect, email):
    observer = await connect()
    await observer.join("bob@example.com")
    a = await connect()
    await a.send({"type": "join", "email": email, "ref": "j"})
    error = await a.expect("error")
    assert error["code"] == "invalid_email" and error["ref"] == "j"
    assert "could pass for another" in error["reason"] or "character (U+" in error["reason"]
    await a.join("alice@example.com")
    assert (await observer.expect("presence"))["email"] == "alice@example.com"  # nothing before it


def test_an_address_cannot_pass_for_a_signed_in_persons_key():
    """Under --auth open a sender's key is the address as typed; a key that
    starts with { is read back as a person (public_of), so an address
    written as Alice's key would be Alice, id and all, to signed-in readers
    of a room that was open once (or of another process of a cluster)."""
    alice = Person("p0123456789ab", "alice@example.com", "Alice")
    forged = json.dumps(
        {**alice.public(), "avatar": alice.public()["avatar"] + "&x=@e.co"}, separators=(",", ":")
    )
    assert public_of(forged)["id"] == alice.id  # what it would pass for
    with pytest.raises(ProtocolError) as caught:
        normalize_email(forged)
    assert caught.value.code == "invalid_email"
