"""ciplan's errors, one hierarchy for the three layers.

UserError and its kinds are mistakes the user can fix (bad input, an impossible request):
the CLI prints them as one line `Error: ...` and exits with code 2. Anything else that
escapes is a bug or a failure of the machine, and surfaces as such.
"""

from __future__ import annotations

__all__ = ["CiplanError", "EngineError", "InputError", "UserError", "rows_hint"]


class CiplanError(Exception):
    """Root of ciplan's own errors."""


class UserError(CiplanError):
    """A mistake in the user's input or request; the message is the whole explanation."""

    exit_code = 2


class InputError(UserError):
    """Input files (members, claims, scheme, configuration, forecast) break their contract."""


class EngineError(UserError):
    """The data engine the user chose cannot read these data or failed on them."""


def rows_hint(rows, limit: int = 5) -> str:
    """Format the first offending row numbers (1-based, header excluded) for a message."""
    rows = list(rows)
    shown = ", ".join(str(int(r) + 1) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"
