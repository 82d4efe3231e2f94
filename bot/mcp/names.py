"""Function names for MCP tools (pure).

OpenAI's rule for function names is ``^[a-zA-Z0-9_-]{1,64}$``. An MCP tool is named
``<server>__<tool>``: the double underscore keeps it apart from built-in names (which have
none), characters outside the rule become ``_``, and a name that is too long or already taken
is cut and given a short hash of the original so it stays stable across refreshes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container

MAX_NAME_CHARS = 64
SEPARATOR = "__"
_OUTSIDE_RULE = re.compile(r"[^A-Za-z0-9_-]")


def function_name(server: str, tool: str, taken: Container[str] = ()) -> str:
    """The model's name for `tool` of `server`, not in `taken`."""
    name = _OUTSIDE_RULE.sub("_", f"{server}{SEPARATOR}{tool}")
    if len(name) <= MAX_NAME_CHARS and name not in taken:
        return name
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()
    for length in (8, 12, 16, 64):
        suffix = "_" + digest[:length]
        candidate = name[: MAX_NAME_CHARS - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free function name for {server}/{tool}")
