"""What an ``ip`` filter value means: an exact address, a network (CIDR) or a text prefix.

* ``185.220.101.0/24``, ``2001:db8::/32``: a network. Host bits may be set (``10.0.0.5/8`` is
  ``10.0.0.0/8``). Rows are checked exactly by ``trek_in_network`` (registered on every
  connection ``AuditQuery`` opens); for IPv4 the (ip, id) index narrows them first by the
  text prefixes of the network's whole octets.
* ``185.220.*`` (a trailing ``*``), or ``185.220.`` and ``2001:db8:`` (a trailing dot or
  colon that does not make an address): a text prefix, a range of the (ip, id) index.
* Anything else is compared as it is, like an address: ``a.ip = ?``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal, NamedTuple

__all__ = ["IpPattern", "in_network", "network_prefixes", "parse_ip_pattern", "text_after"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# At most this many text prefixes narrow a network through the index: 16 ranges of the
# (ip, id) index cost little more than one; beyond that a coarser prefix does (see below).
MAX_PREFIXES = 16


class IpPattern(NamedTuple):
    """One value of the ``ip`` filter, as the SQL uses it.

    ``text`` is the address for ``exact``, the prefix without its ``*`` for ``prefix``, the
    network in its canonical form for ``network`` (``10.0.0.0/8``).
    """

    kind: Literal["exact", "prefix", "network"]
    text: str
    # An address as typed when it is not spelt canonically (``2001:DB8::1``): rows hold what
    # their writer wrote, trek-audit's own writer the canonical form, another app maybe this.
    typed: str | None = None

    @property
    def spellings(self) -> tuple[str, ...]:
        """The texts an exact pattern matches: the canonical form (an IPv6 one in capitals too,
        as some servers write them), and the typed one."""
        texts = [self.text]
        if ":" in self.text and self.text.upper() != self.text:
            texts.append(self.text.upper())
        if self.typed is not None and self.typed not in texts:
            texts.append(self.typed)
        return tuple(texts)


def parse_ip_pattern(value: str) -> IpPattern:
    """Read an ``ip`` filter value; ValueError with a message for the page when it is no pattern."""
    text = value.strip()
    if not text:
        raise ValueError("an IP address, network or prefix is empty")
    if "/" in text:
        return IpPattern("network", str(_parse_network(text)))
    if "*" in text:
        prefix = text.rstrip("*")
        if "*" in prefix:
            raise ValueError(f"{text}: a * may only end a prefix, as in 185.220.*")
        if not prefix:
            raise ValueError(f"{text}: a prefix needs something before the *, as in 185.220.*")
        return IpPattern("prefix", prefix)
    if text.endswith((".", ":")) and not _is_address(text):
        return IpPattern("prefix", text.lower() if ":" in text else text)
    address = _address(text)
    if address is not None and str(address) != text:
        # 2001:DB8:0::1 is 2001:db8::1, and an excluded address must be excluded however typed.
        return IpPattern("exact", str(address), typed=text)
    return IpPattern("exact", text)


def _parse_network(text: str) -> IpNetwork:
    address, _, length = text.partition("/")
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        raise ValueError(f"{text} is not a network: {address} is not an IP address") from None
    longest = 32 if version == 4 else 128
    if not (length.isascii() and length.isdigit()) or int(length) > longest:
        raise ValueError(
            f"{text} is not a network: the prefix length of an IPv{version} network "
            f"is a number from 0 to {longest}"
        )
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as error:
        raise ValueError(f"{text} is not a network: {error}") from None


def _is_address(text: str) -> bool:
    return _address(text) is not None


def text_after(prefix: str) -> str | None:
    """The smallest text greater than every text that starts with ``prefix``, or None.

    SQLite compares TEXT as UTF-8 bytes, which is code point order, so it is the prefix with
    its last character replaced by the next one (stepping over the surrogates, which UTF-8
    cannot hold); None when every character is the last code point.
    """
    while prefix:
        last = ord(prefix[-1]) + 1
        if 0xD800 <= last <= 0xDFFF:
            last = 0xE000
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


def network_prefixes(network: str) -> list[str] | None:
    """Text prefixes of the IPv4 addresses in ``network`` (``10.0.`` for 10.0.0.0/16), or None.

    They cover every address of the network written the usual way (decimal, no leading
    zeros) and are at most MAX_PREFIXES: a network whose bits end inside an octet spells
    each value of that octet (10.16.0.0/12 is 10.16. to 10.31.) when there are at most 16,
    else it is narrowed by its whole octets alone. None when there is nothing to narrow by
    (IPv6, whose texts have many forms, or fewer than 4 bits of IPv4).
    """
    parsed = ipaddress.ip_network(network)
    if not isinstance(parsed, ipaddress.IPv4Network):
        return None
    octets = parsed.network_address.packed
    whole, bits = divmod(parsed.prefixlen, 8)
    if whole == 4:
        return None  # one address: the caller compares it whole
    if 1 << (8 - bits) <= MAX_PREFIXES and bits:
        head = "".join(f"{octet}." for octet in octets[:whole])
        first = octets[whole]
        # The last octet has no dot after it: 198.51.100.16/28 is "198.51.100.16" to
        # "198.51.100.31", which also start .160 to .169 and so on; trek_in_network drops those.
        dot = "." if whole < 3 else ""
        return [f"{head}{value}{dot}" for value in range(first, first + (1 << (8 - bits)))]
    if whole == 0:
        return None
    return ["".join(f"{octet}." for octet in octets[:whole])]


@lru_cache(maxsize=256)
def _network(text: str) -> IpNetwork:
    return ipaddress.ip_network(text, strict=False)


@lru_cache(maxsize=64)
def _networks(text: str) -> tuple[IpNetwork, ...]:
    return tuple(_network(part) for part in text.split())


@lru_cache(maxsize=65_536)
def _address(text: str) -> IpAddress | None:
    """The address ``text`` spells (an IPv4-mapped IPv6 address as its IPv4), None for none.

    Cached: a network is checked row by row, and the rows of a log repeat their addresses.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1, as a dual-stack server reports 10.0.0.1
    return address


def in_network(ip: object, networks: object) -> int:
    """1 when ``ip`` is an address inside any of ``networks`` (separated by spaces), else 0.

    NULL and text that is no address are in no network. SQL function
    ``trek_in_network(ip, networks)``; deterministic. One call checks every network of a
    filter, so that networks without a prefix to narrow them cost one pass over the rows, not
    one each.
    """
    if not isinstance(ip, str) or not isinstance(networks, str):
        return 0  # NULL, or a number or blob that ip_address would read as an address
    address = _address(ip)
    if address is None:
        return 0
    try:
        return int(any(address in network for network in _networks(networks)))
    except (ValueError, TypeError):
        return 0
