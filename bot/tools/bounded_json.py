"""JSON from the model or a person, read with a bounded nesting depth (pure).

`json.loads` recurses once per level: `[[[[…]]]]` a few thousand levels deep raises
RecursionError (not ValueError) and spends the stack. The depth is measured first, in one
linear pass over the text that skips strings, and refused with a plain sentence.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 32


class TooDeep(ValueError):
    """The JSON nests deeper than allowed; the message is a plain sentence."""


def nesting_depth(text: str, *, stop_at: int | None = None) -> int:
    """How deep `[` and `{` nest in `text`, outside strings (stops counting past `stop_at`)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads(text)`, or TooDeep (a ValueError) when it nests deeper than `max_depth`."""
    if nesting_depth(text, stop_at=max_depth) > max_depth:
        raise TooDeep(f"it nests deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen below the depth checked above; never escapes as one
        raise TooDeep(f"it nests deeper than {max_depth} levels") from None


__all__ = ["MAX_JSON_DEPTH", "TooDeep", "loads", "nesting_depth"]
