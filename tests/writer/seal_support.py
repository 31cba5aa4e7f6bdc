"""The chain recomputed from the files, independently of the writer, for the seal tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from trek_audit.layout import LogDir
from trek_audit.writer.seal_key import create_key_file
from trek_audit.writer.state import State, read_state

from .writer_support import log_files

# The writer's lock file (and state page), relative to its log directory.
LOCK = LogDir(Path()).lock_file


class Link(NamedTuple):
    file: str  # trek.log, trek.log.1, ...
    event: dict[str, Any]
    before: bytes  # the chain head before this line
    after: bytes  # and after it


def walk_chain(log_dir: Path) -> list[Link]:
    """Every line of every kept file, oldest first, with the SHA-256 chain over them.

    All lines here are the writer's (tests that add garbage skip it themselves).
    """
    head, links = bytes(32), []
    for path in log_files(log_dir):
        for line in path.read_bytes().split(b"\n")[:-1]:
            after = hashlib.sha256(head + line + b"\n").digest()
            links.append(Link(path.name, orjson.loads(line), head, after))
            head = after
    return links


def seals(links: list[Link]) -> list[Link]:
    return [link for link in links if link.event["action"] == "audit.seal"]


def state_of(log_dir: Path) -> State:
    fd = os.open(log_dir / LOCK, os.O_RDONLY)
    try:
        return read_state(fd)
    finally:
        os.close(fd)


def make_key(log_dir: Path) -> bytes:
    """A sealing key where the writers of ``log_dir`` look by default; the verification key."""
    return create_key_file(log_dir.parent / "seal.key")
