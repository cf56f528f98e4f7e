"""How values, keys and choices are quoted in error messages (bounded, with "did you mean").

Every message of :mod:`irframe.errors` that quotes something the user wrote goes through these:
a value is shown with :func:`short` (a bounded ``repr``), a key or path with :func:`clip`, a close
name with :func:`suggest`, and several problems become one message with :func:`join_problems`.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterator
from typing import Any

SUGGEST_CUTOFF = 0.75
"""Similarity (difflib ratio) a name needs to be offered as "did you mean" (lower ones mislead)."""
MAX_VALUE_CHARS = 200
"""An error message shows at most this many characters of any value."""

__all__ = ["MAX_VALUE_CHARS", "SUGGEST_CUTOFF", "clip", "join_problems", "short", "suggest"]


def short(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` bounded to ``limit`` characters, never expanding a huge nested value."""
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 8, 8, 8, 8
    r.maxstring, r.maxother, r.maxlong = limit, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``str(text)`` cut to ``limit`` characters (for keys and paths quoted without ``repr``)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def suggest(word: Any, choices: Iterator[str] | list[str]) -> str | None:
    """The choice close enough to ``word`` to be offered as "did you mean" (else ``None``)."""
    choices = list(choices)
    text = str(word)
    same_case = [c for c in choices if c.lower() == text.lower()]
    if same_case:
        return same_case[0]
    close = difflib.get_close_matches(text, choices, n=1, cutoff=SUGGEST_CUTOFF)
    return close[0] if close else None


def join_problems(problems: list[str], limit: int = 50) -> str:
    """One message for several problems: the only one, or a count and one indented line each."""
    if len(problems) == 1:
        return problems[0]
    shown = problems[:limit]
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} problems:\n  " + "\n  ".join(shown) + more
