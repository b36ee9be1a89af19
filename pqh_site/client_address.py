"""Who is asking: the client's address, from the socket, or from a proxy the operator trusts.

Every limit counted per address (failed logins, anonymous request rates) uses this one
function, so a client cannot spoof its way out of a limit: `X-Forwarded-For` is a header any
client can send, and it is read only when the request came through a proxy named in
PQH_TRUSTED_PROXIES. Then the client is the right-most address of the header that is not itself
a trusted proxy (each proxy appends the address it received the request from; what is left of
that was written by the client and proves nothing).
"""

import ipaddress
from collections.abc import Iterable, Mapping
from functools import cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Parse addresses or networks ("10.0.0.5", "10.0.0.0/8", "::1"); ValueError names a bad one."""
    networks = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or network") from None
    return tuple(networks)


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address_from(
    remote_addr: str, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """Return the client's address. Pure: the socket's peer, the header, the trusted proxies.

    Without trusted proxies, or when the peer is not one of them, the peer is the client,
    whatever the header says.
    """
    if not trusted or not forwarded_for or not _is_trusted(remote_addr, trusted):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        if hop and not _is_trusted(hop, trusted):
            return hop
    # Every hop is a trusted proxy: the first one received it from the client.
    return hops[0] or remote_addr


@cache
def _trusted(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def trusted_proxies() -> tuple[Network, ...]:
    """PQH_TRUSTED_PROXIES, parsed once per value."""
    return _trusted(tuple(settings.PQH_TRUSTED_PROXIES))


def client_address_of(meta: Mapping[str, str]) -> str:
    """Return the client's address of a WSGI environ or a request's META."""
    return client_address_from(
        meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR"), trusted_proxies()
    )


def client_address(request) -> str:
    """Return the client's address of a request (Django's or DRF's); also axes' IP callable."""
    return client_address_of(request.META)
