"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class CiplanError(Exception):
    """A mistake in the user's input or request; the message is the whole explanation."""

    exit_code = 2


class InputError(CiplanError):
    """Input data (members, claims, scheme) break the data contract."""


def rows_hint(rows, limit: int = 5) -> str:
    """Format the first offending row numbers (1-based, header excluded) for a message."""
    rows = list(rows)
    shown = ", ".join(str(int(r) + 1) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"
