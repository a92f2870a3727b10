"""Who is really on the other end: the client's address behind trusted proxies. No I/O.

The per-address limits (connections and joins per address) are only as good
as the address. A proxy (a dyno's router, nginx) connects to us itself and
names the client in ``X-Forwarded-For``, appending the address it saw to
whatever the client sent. So:

* the header is believed only when the peer that connected to us is a
  trusted proxy (the ``trusted_proxies`` setting); anyone else could write
  any address there and escape the limits;
* it is read from the right: each trusted hop is skipped, and the first
  address that is not a trusted proxy is the client. Entries further left
  were written by that client and prove nothing;
* ``X-Real-IP`` is never read: routers pass it through from the client
  unchanged, so believing it would undo the above.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Loopback and the private ranges: a proxy on the same machine, or a
#: platform's router on its internal network (as on Heroku-style dynos).
DEFAULT_TRUSTED = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")

#: The setting's word for "every peer is a proxy" (for a platform whose
#: routers have public addresses and which strips what clients send).
ANY = "*"

#: Addresses whose answers are kept (parsing one with ipaddress takes
#: microseconds, and each connection of a storm asked it two or three times).
KNOWN = 4096


def parse_networks(text: str) -> tuple[str, ...]:
    """The ``trusted_proxies`` setting: comma-separated addresses or CIDR
    networks, or ``*``; empty trusts nobody. Returns them normalised;
    raises ValueError naming the first bad entry."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if ANY in entries:
        if len(entries) > 1:
            raise ValueError("'*' already trusts every peer; give it alone")
        return (ANY,)
    networks = []
    for entry in entries:
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or a network such as 10.0.0.0/8") from None
    return tuple(networks)


class TrustedProxies:
    """The networks whose ``X-Forwarded-*`` headers are believed."""

    def __init__(self, networks: Iterable[str]) -> None:
        networks = tuple(networks)
        self.any = ANY in networks
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks if n != ANY
        )
        # Asked for every connection, of the same few peers (a proxy, a
        # crowd's addresses): each answered once (at most KNOWN kept).
        self._answers = functools.lru_cache(maxsize=KNOWN)(self._check)

    def trusts(self, address: str) -> bool:
        """Is ``address`` (as text) one of the trusted proxies?"""
        return self._answers(address)

    def _check(self, address: str) -> bool:
        ip = _ip(address)
        if ip is None:
            return False
        if self.any:
            return True
        return any(ip.version == net.version and ip in net for net in self.networks)

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: ``peer`` itself unless it is a trusted
        proxy, else the right-most address of ``forwarded_for`` that is not
        one. If the header is missing or holds garbage where an address
        should be, the last trusted hop that could be read is the client:
        a proxy that sends nonsense is counted as one client, never as many."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for entry in reversed(forwarded_for.split(",")):
            # What a client wrote is never kept in _ip's cache: 4,096 of
            # its ~64 KB headers would be 250 MB. No address is longer
            # than LONGEST (an IPv6 one with an IPv4 tail and a zone).
            text = entry.strip()
            ip = _ip(text) if len(text) <= LONGEST else None
            if ip is None:
                break
            client = str(ip)
            if not self.trusts(client):
                break
        return client

    def scheme(self, peer: str, forwarded_proto: str | None, scheme: str) -> str:
        """``http`` or ``https`` as the client used it: the proxy's
        ``X-Forwarded-Proto`` when ``peer`` is trusted and it is one of the
        two, else ``scheme``, the one of our own connection."""
        if forwarded_proto and self.trusts(peer):
            # Read from the right, as X-Forwarded-For: the last entry is
            # the one our trusted peer wrote.
            proto = forwarded_proto.split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                return proto
        return scheme


#: The prefix an IPv6 client is counted by: a /64 is one subscriber's
#: network (a home, a phone, a server), whose 2^64 addresses it may use at
#: will. Counted one by one, a single client would have no limit at all.
IPV6_PREFIX = 64


@functools.lru_cache(maxsize=KNOWN)
def address_key(address: str) -> str:
    """What every per-address limit counts a client as: an IPv4 address (an
    IPv4-mapped IPv6 one too) as itself, an IPv6 address as its /64
    (``2001:db8:1:2::/64``); anything else (a Unix socket) as given."""
    ip = _ip(address)
    if ip is None:
        return address
    if ip.version == 6:
        return str(ipaddress.IPv6Network((int(ip), IPV6_PREFIX), strict=False))
    return str(ip)


#: The longest text taken as an address in X-Forwarded-For (45 characters
#: for the longest IPv6 with an IPv4 tail, and a zone id after a "%").
LONGEST = 64


@functools.lru_cache(maxsize=KNOWN)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client reaching an IPv6 socket shows as ::ffff:a.b.c.d.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
