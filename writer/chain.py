"""The hash chain over every line of a log directory, and the seals that vouch for it.

The chain: ``h_0`` is 32 zero bytes and ``h_n = SHA-256(h_{n-1} || line_n)``, where ``line_n``
is the exact bytes of the n-th line the writer appended, its final newline (LF) included, in
``seq`` order, across every rotation. Lines that are not format-v1 events (a crash's partial
line, another program's garbage) are not links of the chain: the writer never wrote them.

A seal is an ordinary v1 event, action ``audit.seal``, ``user`` null, written by the writer
under its lock. Its ``details``::

    {"epoch": 3, "first_seq": 1001, "last_seq": 1450, "prev": "<64 hex>",
     "chain": "<64 hex>", "key_id": "<16 hex>", "mac": "<64 hex>"}

* it covers the lines ``first_seq .. last_seq``: every line after the previous seal line, up
  to the line before itself (the seal line's own seq is ``last_seq + 1``);
* ``prev`` is the chain head before ``first_seq`` (after the previous seal line), ``chain``
  the head after ``last_seq``; the seal line itself is the next link of the chain, so the
  next seal vouches for it;
* the first seal under a key (epoch 0) covers nothing (``last_seq = first_seq - 1``,
  ``prev == chain``): it marks where sealing began, and lines before it are unsealed;
* ``key_id`` names the verification key (``key_id``), ``mac`` is HMAC-SHA256 with the epoch's
  key over ``canonical_form``.

Keys: the verification key is the epoch-0 key ``k_0`` (32 random bytes, shown as 64 hex
digits); ``k_{e+1} = HMAC-SHA256(k_e, EVOLVE_LABEL)``. The sealing key file holds only the
current epoch's key: after each seal it is overwritten with the next one, so a key stolen at
epoch e cannot make a valid seal for an epoch before e. Whoever holds the verification key can
derive every epoch's key, and so forge seals: keep it away from the host.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TypedDict

__all__ = [
    "EVOLVE_LABEL",
    "GENESIS",
    "HEAD_BYTES",
    "SEAL_ACTION",
    "EpochKeys",
    "SealDetails",
    "advance",
    "canonical_form",
    "evolve_key",
    "key_id",
    "parse_key",
    "seal_details",
    "seal_mac",
]

SEAL_ACTION = "audit.seal"
HEAD_BYTES = 32
GENESIS = bytes(HEAD_BYTES)
EVOLVE_LABEL = b"trek-audit seal key evolve v1"
_CANONICAL_PREFIX = "trek-audit seal v1"


def advance(head: bytes, line: bytes) -> bytes:
    """The chain head after ``line`` (its newline included) follows ``head``."""
    return hashlib.sha256(head + line).digest()


class SealDetails(TypedDict):
    """The ``details`` of an ``audit.seal`` line."""

    epoch: int
    first_seq: int
    last_seq: int
    prev: str  # 64 lowercase hex digits
    chain: str  # 64 lowercase hex digits
    key_id: str  # 16 lowercase hex digits
    mac: str  # 64 lowercase hex digits


def canonical_form(
    epoch: int, first_seq: int, last_seq: int, prev: str, chain: str, key_id: str
) -> bytes:
    """The bytes a seal's MAC is computed over: one field per line, in this order, ASCII.

    ``trek-audit seal v1\\n<epoch>\\n<first_seq>\\n<last_seq>\\n<prev>\\n<chain>\\n<key_id>\\n``,
    numbers in decimal, hashes in lowercase hex.
    """
    fields = (_CANONICAL_PREFIX, str(epoch), str(first_seq), str(last_seq), prev, chain, key_id)
    return ("\n".join(fields) + "\n").encode("ascii")


def seal_mac(key: bytes, details: SealDetails | dict[str, object]) -> str:
    """The MAC (64 hex digits) of a seal's fields under ``key`` (that epoch's key)."""
    message = canonical_form(
        int(details["epoch"]),  # type: ignore[call-overload]
        int(details["first_seq"]),  # type: ignore[call-overload]
        int(details["last_seq"]),  # type: ignore[call-overload]
        str(details["prev"]),
        str(details["chain"]),
        str(details["key_id"]),
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal_details(
    key: bytes, epoch: int, first_seq: int, last_seq: int, prev: bytes, chain: bytes, kid: str
) -> SealDetails:
    """The details of a seal over ``first_seq .. last_seq``, its MAC made with ``key``."""
    details = SealDetails(
        epoch=epoch,
        first_seq=first_seq,
        last_seq=last_seq,
        prev=prev.hex(),
        chain=chain.hex(),
        key_id=kid,
        mac="",
    )
    details["mac"] = seal_mac(key, details)
    return details


def evolve_key(key: bytes) -> bytes:
    """The next epoch's key: one way, so the next key tells nothing of this one."""
    return hmac.new(key, EVOLVE_LABEL, hashlib.sha256).digest()


def key_id(verification_key: bytes) -> str:
    """A short public name of a verification key (16 hex digits), stored in every seal."""
    return hashlib.sha256(b"trek-audit key id\n" + verification_key).hexdigest()[:16]


def parse_key(text: str) -> bytes:
    """A key as printed (64 hex digits, surrounding space ignored); ValueError otherwise."""
    value = text.strip()
    if value.startswith("verification key:"):
        value = value.removeprefix("verification key:").strip()
    if len(value) != 2 * HEAD_BYTES:
        raise ValueError(f"a key is {2 * HEAD_BYTES} hex digits, got {len(value)} characters")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError("a key is hex digits (0-9, a-f) only") from None


class EpochKeys:
    """Every epoch's key, derived from the verification key on demand.

    Derivation runs forward only, so the keys are kept at intervals and asking for epochs in
    rising order (as a verifier walking the log does) costs one HMAC each.
    """

    _STRIDE = 1024

    def __init__(self, verification_key: bytes) -> None:
        self.verification_key = verification_key
        self.key_id = key_id(verification_key)
        self._checkpoints: dict[int, bytes] = {0: verification_key}
        self._last = (0, verification_key)

    def key(self, epoch: int) -> bytes:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        start, key = self._last
        if start > epoch:
            start = epoch - epoch % self._STRIDE
            while start not in self._checkpoints:
                start -= self._STRIDE
            key = self._checkpoints[start]
        for current in range(start, epoch):
            key = evolve_key(key)
            if (current + 1) % self._STRIDE == 0:
                self._checkpoints[current + 1] = key
        self._last = (epoch, key)
        return key
