"""How logs name people: by a short hash of their address, not the address.

An operator's INFO log (joins, leaves, returns) is kept, shipped and read by
more people than the chat's users agreed to show their address to. So INFO
lines name a person by :func:`email_hash`, the same for the same address in
every process and across restarts (to follow one person through a log), and
only a logger at DEBUG adds the address itself. No I/O.
"""

from __future__ import annotations

import hashlib
import logging

#: Hex digits of SHA-256 kept: 48 bits, no collision among a chat's people.
HASH_DIGITS = 12


def email_hash(email: str) -> str:
    """A short, stable stand-in for ``email`` in logs (``e:`` and 12 hex digits)."""
    return "e:" + hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_DIGITS]


def who(email: str, logger: logging.Logger) -> str:
    """How ``logger`` names ``email``: its hash, and the address too when
    ``logger`` is enabled for DEBUG."""
    if logger.isEnabledFor(logging.DEBUG):
        return f"{email_hash(email)} <{email}>"
    return email_hash(email)
