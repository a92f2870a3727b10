"""chatzilla.proxies: the client's address and scheme behind trusted proxies."""

from __future__ import annotations

import pytest

from chatzilla import proxies
from chatzilla.proxies import DEFAULT_TRUSTED, TrustedProxies, parse_networks

DEFAULT = TrustedProxies(DEFAULT_TRUSTED)
NOBODY = TrustedProxies(())
EVERYONE = TrustedProxies(("*",))


@pytest.mark.parametrize(
    "address, trusted",
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("10.42.0.7", True),
        ("172.16.0.1", True),
        ("172.31.255.255", True),
        ("172.32.0.1", False),
        ("192.168.1.20", True),
        ("fd12:3456::1", True),
        ("::ffff:10.0.0.1", True),  # IPv4 mapped into IPv6 is the IPv4 address
        ("::ffff:203.0.113.9", False),
        ("203.0.113.9", False),
        ("2001:db8::1", False),
        ("", False),
        ("unix", False),
    ],
)
def test_the_default_trusts_loopback_and_private_networks(address, trusted):
    assert DEFAULT.trusts(address) is trusted


def test_a_peer_that_is_not_trusted_is_the_client_whatever_it_says():
    assert DEFAULT.client_address("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert NOBODY.client_address("127.0.0.1", "198.51.100.1") == "127.0.0.1"


def test_a_trusted_peer_names_the_client():
    assert DEFAULT.client_address("10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert DEFAULT.client_address("127.0.0.1", " 2001:db8::5 ") == "2001:db8::5"


def test_without_the_header_the_peer_is_the_client():
    assert DEFAULT.client_address("10.1.2.3", None) == "10.1.2.3"
    assert DEFAULT.client_address("10.1.2.3", "") == "10.1.2.3"


def test_what_the_client_wrote_itself_is_ignored():
    # The client sent "X-Forwarded-For: 1.1.1.1"; its proxy appended what it saw.
    assert DEFAULT.client_address("10.1.2.3", "1.1.1.1, 198.51.100.1") == "198.51.100.1"


def test_trusted_hops_are_skipped_from_the_right():
    assert DEFAULT.client_address("127.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.5, 10.0.0.6") == "198.51.100.1"


def test_a_chain_of_trusted_addresses_only_ends_at_its_left():
    assert DEFAULT.client_address("127.0.0.1", "192.168.0.9, 10.0.0.5") == "192.168.0.9"


@pytest.mark.parametrize("header", ["not-an-ip", "1.1.1.1, garbage", "198.51.100.1:4444", ",", "unknown"])
def test_garbage_in_the_header_counts_as_the_hop_that_sent_it(header):
    assert DEFAULT.client_address("10.1.2.3", header) == "10.1.2.3"


def test_what_a_client_writes_is_never_kept():
    """Each address's answer is kept (a cache of 4,096), but never a long
    entry of the header: 4,096 headers of 60 KB each were 250 MB held."""
    garbage = "x" * 60_000
    DEFAULT.client_address("10.1.2.3", "warm")  # the peer's own answers kept
    kept = proxies._ip.cache_info().currsize
    for n in range(20):
        assert DEFAULT.client_address("10.1.2.3", f"{garbage}{n}") == "10.1.2.3"
    assert proxies._ip.cache_info().currsize == kept
    # An address of the longest form is still read.
    longest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
    assert DEFAULT.client_address("10.1.2.3", longest) == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"


def test_garbage_further_left_is_never_reached():
    assert DEFAULT.client_address("10.1.2.3", "garbage, 198.51.100.1") == "198.51.100.1"


def test_trusting_everyone_takes_the_leftmost_address():
    # With '*' every address is a proxy, so the walk ends at the left.
    assert EVERYONE.client_address("203.0.113.9", "198.51.100.1") == "198.51.100.1"


def test_the_scheme_comes_from_a_trusted_proxy_only():
    assert DEFAULT.scheme("10.1.2.3", "https", "http") == "https"
    assert DEFAULT.scheme("10.1.2.3", "HTTPS", "http") == "https"
    assert DEFAULT.scheme("10.1.2.3", "http, https", "http") == "https"
    assert DEFAULT.scheme("203.0.113.9", "https", "http") == "http"
    assert DEFAULT.scheme("10.1.2.3", "gopher", "http") == "http"
    assert DEFAULT.scheme("10.1.2.3", None, "https") == "https"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", ()),
        (" , ", ()),
        ("*", ("*",)),
        ("127.0.0.1", ("127.0.0.1/32",)),
        ("10.0.0.0/8,fc00::/7", ("10.0.0.0/8", "fc00::/7")),
        ("10.9.9.9/8", ("10.0.0.0/8",)),
    ],
)
def test_parse_networks(text, expected):
    assert parse_networks(text) == expected


@pytest.mark.parametrize(
    "text, says",
    [
        ("router.example.com", "'router.example.com' is not an address"),
        ("10.0.0.0/8, 10.0.0.0/40", "'10.0.0.0/40'"),
        ("*, 10.0.0.0/8", "alone"),
    ],
)
def test_parse_networks_names_the_bad_entry(text, says):
    with pytest.raises(ValueError, match=says):
        parse_networks(text)
