"""Versioned SQL that migrations load: ``append_v1.sql``, ``append_v2.sql``, ...

A released file never changes (migrations replay it); a new version is a new file and a
migration that loads it. Plain ``open`` by file name next to this module: no Django here.
"""

from __future__ import annotations

import re
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
_VERSIONED = re.compile(r"^(?P<stem>[a-z_]+)_v(?P<version>[0-9]+)\.sql$")


def sql_text(name: str) -> str:
    """The text of the SQL file ``name`` (e.g. ``"append_v2.sql"``) in this package."""
    if Path(name).name != name:
        raise ValueError(f"{name!r} is a file name in ledger/sql/, not a path")
    return (DIRECTORY / name).read_text(encoding="utf-8")


def versions(stem: str) -> list[str]:
    """The file names of ``stem``'s versions, oldest first (``versions("append")[-1]`` is the newest)."""
    found = [(int(match["version"]), path.name) for path in DIRECTORY.glob(f"{stem}_v*.sql")
             if (match := _VERSIONED.match(path.name)) and match["stem"] == stem]
    return [name for _, name in sorted(found)]
