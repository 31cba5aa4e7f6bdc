"""Which address made a request: the socket's peer, or a proxy's X-Forwarded-For when trusted."""

from __future__ import annotations

import ipaddress

from trek_audit.settings import parse_trust_proxy

__all__ = ["client_ip"]


def client_ip(
    remote_addr: str | None,
    x_forwarded_for: str | None,
    trust_proxy: object = 0,
) -> str | None:
    """Return the client's IP address.

    With ``trust_proxy`` unset, empty, ``0`` or ``false`` the header is ignored and the
    socket's remote address is the answer: any client can write X-Forwarded-For. With N
    trusted hops (``true`` means 1), each trusted proxy appended the address it saw, so
    the client is the Nth entry counted from the right. A header that is shorter than
    that, or holds something that is not an IP address there, gives the remote address.
    """
    hops = parse_trust_proxy(trust_proxy)
    if hops == 0 or not x_forwarded_for:
        return remote_addr
    entries = [entry.strip() for entry in x_forwarded_for.split(",")]
    if len(entries) < hops:
        return remote_addr
    candidate = entries[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr
