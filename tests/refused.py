"""The refused inputs of protocol v1, in one place.

test_protocol_parsing checks each against the rule that refuses it (pure
functions, no server); test_protocol_errors sends each over a real
connection on one transport, and a few of them over every transport.

A frame given as a str is sent as the application frame's text verbatim; a
dict is JSON-encoded (:func:`frame_text`).
"""

from __future__ import annotations

import json

ALICE = "alice@example.com"


def frame_text(frame: str | dict) -> str:
    return frame if isinstance(frame, str) else json.dumps(frame)


#: Frames refused with bad_frame, whatever the connection's state.
BAD_FRAMES: dict[str, str | dict] = {
    "not-json": "not json",
    "empty-text": "",
    "truncated-json": '{"type": "message", "content": "hi"',
    "single-quotes": "{'type': 'message', 'content': 'hi'}",
    "deeply-nested": "[" * 50_000,
    "array": '[{"type": "message", "content": "hi"}]',
    "number": "5",
    "string": '"message"',
    "null": "null",
    "true": "true",
    "no-type": {"content": "hi"},
    "type-number": {"type": 5, "content": "hi"},
    "type-null": {"type": None, "content": "hi"},
    "type-list": {"type": ["message"], "content": "hi"},
    "type-object": {"type": {"name": "message"}, "content": "hi"},
    "unknown-type": {"type": "shout", "content": "hi"},
    "type-wrong-case": {"type": "Message", "content": "hi"},
    "type-empty": {"type": "", "content": "hi"},
    "content-number": {"type": "message", "content": 5},
    "content-null": {"type": "message", "content": None},
    "content-missing": {"type": "message"},
    "content-list": {"type": "message", "content": ["hi"]},
    "content-object": {"type": "message", "content": {"text": "hi"}},
    "content-bool": {"type": "message", "content": True},
    "content-nan": '{"type": "message", "content": NaN}',
    "content-lone-surrogate": '{"type": "message", "content": "\\ud800"}',
    "content-lone-surrogate-inside": '{"type": "message", "content": "ab\\udc00cd"}',
    "content-lone-surrogate-char": '{"type": "message", "content": "x\ud800"}',
    "email-null": {"type": "join", "email": None},
    "email-missing": {"type": "join"},
    "email-number": {"type": "join", "email": 5},
    "email-list": {"type": "join", "email": [ALICE]},
    "email-lone-surrogate": '{"type": "join", "email": "\\ud800@example.com"}',
    "ref-too-long": {"type": "message", "content": "hi", "ref": "r" * 65},
    "ref-number": {"type": "message", "content": "hi", "ref": 1},
    "ref-list": {"type": "message", "content": "hi", "ref": ["r"]},
    "ref-object": {"type": "message", "content": "hi", "ref": {}},
    "ref-bool": {"type": "message", "content": "hi", "ref": False},
    "ref-lone-surrogate": '{"type": "message", "content": "hi", "ref": "\\udc00"}',
}

#: Refused frames that carry a valid ref: the error echoes it.
BAD_FRAMES_WITH_REF: dict[str, str | dict] = {
    "unknown-type": {"type": "shout", "ref": "r-1"},
    "content-number": {"type": "message", "content": 5, "ref": "r-2"},
    "content-missing": {"type": "message", "ref": "r-3"},
    "content-lone-surrogate": '{"type": "message", "content": "\\ud800", "ref": "r-4"}',
    "email-null": {"type": "join", "email": None, "ref": "r-5"},
    "64-char-ref": {"type": "message", "content": None, "ref": "r" * 64},
    "unicode-ref": {"type": "message", "content": 1, "ref": "ключ 🔑"},
}

#: Elements of a SockJS packet's array that are not strings: SockJS
#: messages are text, so each is a bad_frame (an object is not taken as a frame).
NOT_TEXT: dict[str, object] = {
    "number": 5,
    "null": None,
    "bool": True,
    "list": ["x"],
    "object": {"type": "message", "content": "hi"},
}

#: Addresses a join is refused with invalid_email.
INVALID_EMAILS: dict[str, str] = {
    "empty": "",
    "white-space-only": "  \t ",
    "no-at": "alice.example.com",
    "two-ats": "alice@bob@example.com",
    "empty-local-part": "@example.com",
    "empty-domain": "alice@",
    "domain-without-dot": "alice@localhost",
    "space-in-local-part": "ali ce@example.com",
    "space-in-domain": "alice@exam ple.com",
    "tab-inside": "alice\t@example.com",
    "newline-inside": "alice@example.com\nbcc@example.com",
    "no-break-space-inside": "ali\u00a0ce@example.com",
    "em-space-inside": "alice@example\u2003.com",
    "nul": "ali\x00ce@example.com",
    "trailing-nul": "alice@example.com\x00",
    "bell": "alice\x07@example.com",
    "escape": "\x1b[31malice@example.com",
    "del": "alice\x7f@example.com",
    "c1-control": "alice\x9b@example.com",
    "255-chars": "a" * 243 + "@example.com",
}

#: Message contents refused with empty.
BLANK_CONTENTS: dict[str, str] = {
    "empty": "",
    "space": " ",
    "white-space": "\n\t \r\n",
    "unicode-white-space": "\u3000\u00a0\u2003",
}

#: Message contents refused with too_long under the default limit (2000
#: characters once trimmed), and the longest ones that are not.
TOO_LONG_CONTENTS: dict[str, str] = {
    "2001-chars": "x" * 2001,
    "2001-astral-chars": "🦖" * 2001,
    "2001-chars-once-trimmed": "  " + "x" * 2001 + "  ",
}
LONGEST_CONTENTS: dict[str, str] = {
    "2000-chars": "x" * 2000,
    "2000-astral-chars": "🦖" * 2000,
    "2000-chars-once-trimmed": "\n  " + "y" * 2000 + "  \n",
}
