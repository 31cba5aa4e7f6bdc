"""Each seal's own checks, in log order: its shape, its MAC with exactly its epoch's key, and its
epoch after the last one's.

With the verification key, the MAC is checked with the key of the epoch the seal names, and
epochs must be consecutive under one key id: journald's CVE-2023-31439 accepted old entries
sealed with a newer key, so a range sealed again with a later epoch's key (as a thief copies it
from the sealing key file) is ``resealed`` here, not accepted.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING, Any

from .findings import LOSSES, Findings, Place

if TYPE_CHECKING:
    from trek_audit.writer.chain import EpochKeys

__all__ = ["SealChecks", "seal_details"]

_HASH = re.compile(r"[0-9a-f]{64}\Z")
_KEY_ID = re.compile(r"[0-9a-f]{16}\Z")
_SEAL_KEYS = frozenset(("epoch", "first_seq", "last_seq", "prev", "chain", "key_id", "mac"))


def seal_details(details: object) -> dict[str, Any] | None:
    """A seal's details if they have every field, well formed; None otherwise."""
    if type(details) is not dict or details.keys() != _SEAL_KEYS:
        return None
    numbers = (details["epoch"], details["first_seq"], details["last_seq"])
    if any(type(n) is not int or n < 0 for n in numbers):
        return None
    hashes = (details["prev"], details["chain"], details["mac"])
    if any(type(h) is not str or _HASH.match(h) is None for h in hashes):
        return None
    if type(details["key_id"]) is not str or _KEY_ID.match(details["key_id"]) is None:
        return None
    return details


class SealChecks:
    """The MAC and the epoch of each seal of a stream, and what the seals were made under."""

    def __init__(self, key: bytes | None, findings: Findings) -> None:
        from trek_audit.writer.chain import EpochKeys

        self.keys: EpochKeys | None = None if key is None else EpochKeys(key)
        self.findings = findings
        self.seals = 0
        self.epochs: set[tuple[str, int]] = set()
        self.key_ids: set[str] = set()
        self.key_id: str | None = None  # of the last seal
        self.next_epochs: set[int] = set()  # the epochs the next seal may have

    def check(
        self, details: dict[str, Any], position: int, place: Place, last_seal: int | None
    ) -> None:
        """Check the seal at ``position`` (``last_seal``: the position of the one before)."""
        self.seals += 1
        self.epochs.add((details["key_id"], details["epoch"]))
        self.key_ids.add(details["key_id"])
        mac_right = self._check_mac(details, position, place)
        self._check_epoch(details, position, place, mac_right, last_seal)

    def key_note(self) -> str | None:
        """A note when the key given is the verification key of no seal here."""
        if self.keys is not None and self.key_ids and self.keys.key_id not in self.key_ids:
            return (
                f"the key given (key id {self.keys.key_id}) is not the verification key of "
                f"any seal here (key ids {', '.join(sorted(self.key_ids))})"
            )
        return None

    def _check_mac(self, details: dict[str, Any], position: int, place: Place) -> bool:
        from trek_audit.writer.chain import seal_mac

        if self.keys is None:
            return False
        covered = (details["first_seq"], details["last_seq"])
        if details["key_id"] != self.keys.key_id:
            self.findings.problem(
                position, "forged_seal", place,
                f"sealed under key id {details['key_id']}, not the verification key given "
                f"(key id {self.keys.key_id}): its MAC cannot be checked",
                covered,
            )  # fmt: skip
            return False
        expected = seal_mac(self.keys.key(details["epoch"]), details)
        if hmac.compare_digest(expected, details["mac"]):
            return True
        self.findings.problem(
            position, "forged_seal", place,
            f"the MAC is wrong for epoch {details['epoch']}'s key: this seal was not made "
            "by the writer that holds the sealing key",
            covered,
        )  # fmt: skip
        return False

    def _check_epoch(
        self,
        details: dict[str, Any],
        position: int,
        place: Place,
        mac_right: bool,
        last_seal: int | None,
    ) -> None:
        epoch, key_id = details["epoch"], details["key_id"]
        covered = (details["first_seq"], details["last_seq"])
        problem = self.findings.problem
        if epoch == 0:
            if key_id == self.key_id or (key_id in self.key_ids and self.seals > 1):
                problem(
                    position, "resealed", place,
                    f"a second opening seal (epoch 0) under key id {key_id}: a key's epochs "
                    "never start over",
                    covered,
                )  # fmt: skip
        elif self.key_id is not None and key_id != self.key_id:
            problem(
                position, "forged_seal", place,
                f"sealed under key id {key_id} at epoch {epoch}, after seals under key id "
                f"{self.key_id}: a new key starts with an opening seal (epoch 0)",
                covered,
            )  # fmt: skip
        elif self.next_epochs and epoch not in self.next_epochs:
            due = min(self.next_epochs)
            low = last_seal if last_seal is not None else position
            if epoch < due:
                problem(
                    position, "resealed", place,
                    f"epoch {epoch} where epoch {due} was due: epochs only go up, so this range "
                    "was sealed again after later seals",
                    covered,
                )  # fmt: skip
            elif mac_right:
                problem(
                    position, "resealed", place,
                    f"epoch {epoch} where epoch {due} was due, with a MAC right for epoch "
                    f"{epoch}: this range was sealed again with a later key (as the sealing key "
                    "file holds after those seals); epochs must be consecutive",
                    covered,
                    suspect=(low, position, LOSSES),
                )  # fmt: skip
            else:
                problem(
                    position, "epoch_gap", place,
                    f"epoch {epoch} where epoch {due} was due: epochs of one key are consecutive, "
                    "so seals were removed or this range was sealed again with a later key",
                    covered,
                    suspect=(low, position, LOSSES),
                )  # fmt: skip
            self.next_epochs = {e + 1 for e in self.next_epochs} | {epoch + 1}
            self.key_id = key_id
            return
        self.key_id = key_id
        self.next_epochs = {epoch + 1}
