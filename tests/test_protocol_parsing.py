"""chatzilla.protocol: frame parsing and the e-mail/content rules of PROTOCOL.md.

Pure functions only; no sockets, no event loop.
"""

from __future__ import annotations

import json

import pytest

from chatzilla.protocol import (
    MAX_EMAIL,
    MAX_REF,
    Join,
    Leave,
    ProtocolError,
    Say,
    Typing,
    clean_content,
    encode,
    error_frame,
    normalize_email,
    parse_frame,
)
from chatzilla.settings import Settings

from .refused import (
    BAD_FRAMES,
    BAD_FRAMES_WITH_REF,
    BLANK_CONTENTS,
    INVALID_EMAILS,
    LONGEST_CONTENTS,
    TOO_LONG_CONTENTS,
    frame_text,
)


def frame(**fields) -> str:
    return json.dumps(fields)


def refused(code: str, call, *args) -> ProtocolError:
    """Call, expect a ProtocolError with ``code``, return it for more checks."""
    with pytest.raises(ProtocolError) as info:
        call(*args)
    assert info.value.code == code, info.value
    assert info.value.reason  # always something human-readable
    return info.value


# -- parse_frame: the good frames -------------------------------------------


def test_join_frame_gives_join_with_raw_email():
    # Only the shape is checked here: the address is normalized by the hub.
    assert parse_frame(frame(type="join", email="  Alice@Example.COM ")) == Join(email="  Alice@Example.COM ")


def test_message_frame_without_ref():
    assert parse_frame(frame(type="message", content="  hello ")) == Say(content="  hello ", ref=None)


def test_message_frame_with_ref():
    assert parse_frame(frame(type="message", content="hi", ref="b-1")) == Say(content="hi", ref="b-1")


def test_ref_of_exactly_max_length_is_accepted():
    ref = "r" * MAX_REF
    assert MAX_REF == 64
    assert parse_frame(frame(type="message", content="hi", ref=ref)) == Say("hi", ref)


def test_typing_frame():
    assert parse_frame(frame(type="typing")) == Typing()
    assert parse_frame(frame(type="typing", ref="t-1", email="ignored@example.com")) == Typing(ref="t-1")


def test_leave_frame():
    assert parse_frame(frame(type="leave")) == Leave()
    assert parse_frame(frame(type="leave", ref="l-1", room="ignored")) == Leave(ref="l-1")


def test_unknown_fields_are_ignored():
    text = frame(type="message", content="hi", ref="r", colour="red", extra={"nested": [1, 2]})
    assert parse_frame(text) == Say("hi", "r")
    assert parse_frame(frame(type="join", email="a@example.com", v=2)) == Join("a@example.com")


def test_valid_surrogate_pair_is_one_character():
    # "\ud83d\ude00" in JSON is a proper pair: one astral character, accepted.
    command = parse_frame('{"type":"message","content":"smile \\ud83d\\ude00"}')
    assert command == Say("smile \U0001f600", None)


def test_non_ascii_text_is_kept():
    assert parse_frame(frame(type="message", content="héllo ☃ 你好")) == Say("héllo ☃ 你好", None)


# -- parse_frame: bad_frame ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{",
        '{"type": "join", "email": "a@example.com"',  # truncated
        "[]",
        '["join"]',
        '"join"',
        "1",
        "null",
        "true",
        "{}",  # no type
        '{"type": 1}',
        '{"type": null}',
        '{"type": ["join"]}',
        '{"type": {"join": true}}',
        '{"type": "JOIN", "email": "a@example.com"}',  # type is case-sensitive
        '{"type": "part"}',  # unknown type
        '{"type": ""}',
        '{"type": "join"}',  # email missing
        '{"type": "join", "email": null}',
        '{"type": "join", "email": 42}',
        '{"type": "join", "email": ["a@example.com"]}',
        '{"type": "join", "email": {"address": "a@example.com"}}',
        '{"type": "message"}',  # content missing
        '{"type": "message", "content": null}',
        '{"type": "message", "content": 5}',
        '{"type": "message", "content": true}',
        '{"type": "message", "content": ["hi"]}',
        '{"type": "message", "content": "hi", "ref": 1}',
        '{"type": "message", "content": "hi", "ref": ["r"]}',
        '{"type": "message", "content": "hi", "ref": false}',
    ],
)
def test_bad_frames_are_refused(text):
    refused("bad_frame", parse_frame, text)


def test_deeply_nested_json_is_bad_frame_not_a_crash():
    refused("bad_frame", parse_frame, "[" * 100_000 + "]" * 100_000)
    refused("bad_frame", parse_frame, '{"a":' * 100_000 + "1" + "}" * 100_000)


def test_ref_longer_than_max_is_refused_and_not_echoed():
    error = refused("bad_frame", parse_frame, frame(type="message", content="hi", ref="r" * (MAX_REF + 1)))
    assert error.ref is None


def test_non_string_ref_is_not_echoed():
    assert refused("bad_frame", parse_frame, '{"type":"message","content":"hi","ref":7}').ref is None


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "nope", "ref": "r-1"}',
        '{"type": 3, "ref": "r-1"}',
        '{"ref": "r-1"}',
        '{"type": "message", "content": 5, "ref": "r-1"}',
        '{"type": "message", "ref": "r-1"}',
        '{"type": "join", "email": 5, "ref": "r-1"}',
    ],
)
def test_bad_frame_with_valid_ref_echoes_it(text):
    assert refused("bad_frame", parse_frame, text).ref == "r-1"


def test_bad_frame_reason_for_unknown_type_is_bounded():
    error = refused("bad_frame", parse_frame, frame(type="x" * 10_000))
    assert len(error.reason) < 200


# -- lone surrogates ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        r'{"type": "join", "email": "\ud800@example.com"}',
        r'{"type": "join", "email": "a@example.com\udfff"}',
        r'{"type": "message", "content": "hi \ud83d"}',
        r'{"type": "message", "content": "\ude00 hi"}',
        r'{"type": "message", "content": "hi", "ref": "\ud800"}',
        r'{"type": "\ud800"}',
    ],
)
def test_lone_surrogates_are_bad_frame(text):
    error = refused("bad_frame", parse_frame, text)
    # Whatever goes back to the client must itself be sendable as UTF-8.
    encode(error_frame(error)).encode("utf-8")


def test_lone_surrogate_in_ref_is_not_echoed():
    error = refused("bad_frame", parse_frame, r'{"type": "message", "content": "hi", "ref": "a\udc00"}')
    assert error.ref is None


def test_lone_surrogate_in_content_keeps_valid_ref():
    error = refused("bad_frame", parse_frame, r'{"type": "message", "content": "\ud800", "ref": "m-9"}')
    assert error.ref == "m-9"


# -- normalize_email -----------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("alice@example.com", "alice@example.com"),
        ("  alice@example.com  ", "alice@example.com"),
        ("\t\nalice@example.com\r\n", "alice@example.com"),
        ("alice@Example.COM", "alice@example.com"),
        # The domain is lower-cased; the local part is kept as typed.
        ("Alice.Smith@EXAMPLE.co.UK", "Alice.Smith@example.co.uk"),
        ("ALICE@EXAMPLE.COM", "ALICE@example.com"),
        ("a@b.c", "a@b.c"),
        ("first.last+tag@sub.example.org", "first.last+tag@sub.example.org"),
        ("josé@BÜCHER.de", "josé@bücher.de"),
    ],
)
def test_valid_addresses_are_normalized(raw, expected):
    assert normalize_email(raw) == expected


def _address(length: int) -> str:
    domain = "@example.com"
    return "a" * (length - len(domain)) + domain


def test_address_of_exactly_254_characters_is_accepted():
    assert MAX_EMAIL == 254
    address = _address(254)
    assert len(address) == 254
    assert normalize_email(address) == address


def test_address_of_255_characters_is_refused():
    refused("invalid_email", normalize_email, _address(255))


def test_normalized_address_is_never_longer_than_254():
    # Lower-casing can lengthen text: "İ" (U+0130) becomes "i̇", two characters.
    # The address the chat announces must still obey the 254 limit.
    raw = "a@" + "\u0130" * 248 + ".com"
    assert len(raw) == 254
    try:
        normalized = normalize_email(raw)
    except ProtocolError as error:
        assert error.code == "invalid_email"
    else:
        length = len(normalized)
        assert length <= MAX_EMAIL, f"the normalized address has {length} characters"


def test_length_is_counted_after_trimming():
    address = _address(254)
    assert normalize_email("   " + address + "   ") == address


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\t\n",
        "alice",  # no @
        "alice.example.com",
        "alice@@example.com",  # two @
        "a@b@example.com",
        "alice@example.com@",
        "@example.com",  # empty local part
        " @example.com",
        "alice@",  # empty domain
        "alice@example",  # domain without a dot
        "alice@localhost",
        "alice@.com",  # the dot may not start the domain ...
        "alice@example.",  # ... nor end it
        "alice@.",
    ],
)
def test_malformed_addresses_are_refused(raw):
    refused("invalid_email", normalize_email, raw)


@pytest.mark.parametrize(
    "bad",
    [
        " ",
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x0c",  # ASCII white space inside
        "\u00a0",
        "\u2003",
        "\u3000",
        "\u2028",
        "\u1680",  # Unicode white space
        "\x00",
        "\x01",
        "\x07",
        "\x1b",
        "\x7f",  # C0 controls and DEL
        "\x80",
        "\x85",
        "\x9f",  # C1 controls
    ],
)
@pytest.mark.parametrize("where", ["local", "domain"])
def test_whitespace_and_control_characters_inside_are_refused(bad, where):
    raw = f"ali{bad}ce@example.com" if where == "local" else f"alice@exa{bad}mple.com"
    refused("invalid_email", normalize_email, raw)


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x7f", "\x80"])
def test_trailing_control_characters_are_not_trimmed_away(bad):
    # Trimming removes white space, not control characters.
    refused("invalid_email", normalize_email, f"alice@example.com{bad}")


# -- clean_content -------------------------------------------------------------


def test_content_is_trimmed():
    assert clean_content("  hello world \n", 2000) == "hello world"


def test_inner_white_space_is_kept():
    assert clean_content(" line one\n\nline  two ", 2000) == "line one\n\nline  two"


@pytest.mark.parametrize("raw", ["", " ", "\n\t  \r\n", "\u00a0\u3000"])
def test_blank_content_is_empty(raw):
    refused("empty", clean_content, raw, 2000)


@pytest.mark.parametrize("limit", [1, 10, 2000])
def test_content_at_the_limit_is_accepted(limit):
    assert clean_content("x" * limit, limit) == "x" * limit


@pytest.mark.parametrize("limit", [1, 10, 2000])
def test_content_one_over_the_limit_is_too_long(limit):
    refused("too_long", clean_content, "x" * (limit + 1), limit)


def test_limit_applies_after_trimming():
    assert clean_content("  " + "x" * 10 + "\n", 10) == "x" * 10


def test_limit_counts_characters_not_bytes():
    assert clean_content("é" * 10, 10) == "é" * 10
    refused("too_long", clean_content, "é" * 11, 10)


# -- error_frame and encode ----------------------------------------------------


def test_error_frame_without_ref_has_no_ref_key():
    assert error_frame(ProtocolError("empty", "the message is empty")) == {
        "type": "error",
        "code": "empty",
        "reason": "the message is empty",
    }


def test_error_frame_echoes_ref_when_present():
    assert error_frame(ProtocolError("too_long", "too long", "b-7")) == {
        "type": "error",
        "code": "too_long",
        "reason": "too long",
        "ref": "b-7",
    }


def test_error_frame_echoes_an_empty_ref():
    # An empty string is a ref the client sent; only a missing one is left out.
    assert error_frame(ProtocolError("empty", "x", ""))["ref"] == ""


def test_protocol_error_str_names_the_code():
    assert str(ProtocolError("not_joined", "join first")) == "not_joined: join first"


def test_encode_is_compact_json():
    assert encode({"type": "sent", "id": 1, "ts": 1.5}) == '{"type":"sent","id":1,"ts":1.5}'


def test_encode_keeps_unicode_as_text():
    text = encode({"type": "message", "content": "héllo ☃ 你好 \U0001f600"})
    assert "héllo ☃ 你好 \U0001f600" in text
    assert "\\u" not in text
    assert json.loads(text)["content"] == "héllo ☃ 你好 \U0001f600"
    text.encode("utf-8")


def test_encode_escapes_what_json_must_escape():
    text = encode({"content": 'quote " backslash \\ newline \n <b>'})
    assert json.loads(text) == {"content": 'quote " backslash \\ newline \n <b>'}
    assert "\n" not in text  # one frame, one line


def test_encoded_error_frame_round_trips():
    error = ProtocolError("bad_frame", "a frame must be a JSON object", "r")
    assert json.loads(encode(error_frame(error))) == {
        "type": "error",
        "code": "bad_frame",
        "reason": "a frame must be a JSON object",
        "ref": "r",
    }


# -- the refused inputs that test_protocol_errors sends over the wire ----------
# Each case of tests/refused.py against the rule that refuses it, so that the
# wire tests can take the whole table on one transport.


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_each_refused_frame_is_a_bad_frame_without_a_ref(frame):
    assert refused("bad_frame", parse_frame, frame_text(frame)).ref is None


@pytest.mark.parametrize("frame", BAD_FRAMES_WITH_REF.values(), ids=BAD_FRAMES_WITH_REF.keys())
def test_each_refused_frame_with_a_valid_ref_echoes_it(frame):
    text = frame_text(frame)
    assert refused("bad_frame", parse_frame, text).ref == json.loads(text)["ref"]


@pytest.mark.parametrize("email", INVALID_EMAILS.values(), ids=INVALID_EMAILS.keys())
def test_each_refused_address_is_an_invalid_email(email):
    # A join frame carrying it parses; the address is refused after.
    assert parse_frame(json.dumps({"type": "join", "email": email})) == Join(email)
    refused("invalid_email", normalize_email, email)


@pytest.mark.parametrize("content", BLANK_CONTENTS.values(), ids=BLANK_CONTENTS.keys())
def test_each_blank_content_is_empty(content):
    refused("empty", clean_content, content, Settings().max_content)


@pytest.mark.parametrize("content", TOO_LONG_CONTENTS.values(), ids=TOO_LONG_CONTENTS.keys())
def test_each_content_over_the_default_limit_is_too_long(content):
    refused("too_long", clean_content, content, Settings().max_content)


@pytest.mark.parametrize("content", LONGEST_CONTENTS.values(), ids=LONGEST_CONTENTS.keys())
def test_each_content_at_the_default_limit_is_accepted(content):
    assert clean_content(content, Settings().max_content) == content.strip()
