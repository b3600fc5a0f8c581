"""Small wording helpers shared by the summaries of commands, the indexer and the window."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """'1 sidecar', '2,000 sidecars' (a regular plural: the noun + s)."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
