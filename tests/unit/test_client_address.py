"""The client address: the socket's peer, or X-Forwarded-For only through a trusted proxy."""

import pytest

from pqh_site.client_address import client_address_from, parse_networks

PROXY = parse_networks(["10.0.0.5", "192.168.0.0/16"])


def test_without_trusted_proxies_a_forwarded_header_changes_nothing():
    assert client_address_from("203.0.113.9", "1.2.3.4", ()) == "203.0.113.9"


def test_a_header_from_a_client_that_is_not_a_trusted_proxy_is_ignored():
    assert client_address_from("203.0.113.9", "1.2.3.4", PROXY) == "203.0.113.9"


def test_through_a_trusted_proxy_the_client_is_the_last_hop_it_added():
    assert client_address_from("10.0.0.5", "198.51.100.7", PROXY) == "198.51.100.7"


def test_a_client_cannot_spoof_by_prepending_addresses_through_the_proxy():
    # The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the address it saw.
    assert client_address_from("10.0.0.5", "1.1.1.1, 198.51.100.7", PROXY) == "198.51.100.7"


def test_chained_trusted_proxies_are_skipped_from_the_right():
    hops = "198.51.100.7, 192.168.3.4"  # the edge proxy saw the client, the inner one the edge
    assert client_address_from("10.0.0.5", hops, PROXY) == "198.51.100.7"


def test_a_header_of_only_trusted_hops_gives_the_first():
    assert client_address_from("10.0.0.5", "192.168.1.1, 192.168.1.2", PROXY) == "192.168.1.1"


def test_an_empty_or_missing_header_through_the_proxy_gives_the_proxy():
    assert client_address_from("10.0.0.5", None, PROXY) == "10.0.0.5"
    assert client_address_from("10.0.0.5", "", PROXY) == "10.0.0.5"


def test_ipv6_proxies_and_clients():
    proxies = parse_networks(["::1"])
    assert client_address_from("::1", "2001:db8::7", proxies) == "2001:db8::7"


def test_a_bad_proxy_entry_is_named():
    with pytest.raises(ValueError, match="'nonsense' is not an IP address or network"):
        parse_networks(["10.0.0.1", "nonsense"])
