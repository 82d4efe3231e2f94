"""Text the databases can store: what they reject is removed at the driver boundary.

PostgreSQL refuses NUL (U+0000) in `text` columns ("text fields cannot contain NUL") and in
`jsonb` (`\\u0000`); neither psycopg nor sqlite3 can encode lone surrogates (U+D800 to
U+DFFF, which `json.loads` happily produces from a payload's `"\\ud83d"`) as UTF-8. SQLite
stores NUL, so a message that works in development is lost in production. Every statement
our engines run passes `postgres_safe_parameters`, and every JSON document
`postgres_safe_json_dumps` (see bot.db.engine), so any text from Slack, the model or a tool
is stored and answered instead of failing the transaction. NUL is dropped (it carries no
meaning in a chat message); a lone surrogate becomes U+FFFD.
"""

from __future__ import annotations

import json
import re
from typing import Any

_REJECTED = re.compile("[\x00\ud800-\udfff]")


def _replacement(match: re.Match) -> str:
    return "" if match.group() == "\x00" else "\ufffd"


def postgres_safe_text(text: str) -> str:
    """`text` without NUL, lone surrogates replaced by U+FFFD; unchanged (same object) when clean."""
    if _REJECTED.search(text) is None:
        return text
    return _REJECTED.sub(_replacement, text)


def postgres_safe(value: Any) -> Any:
    """`value` with every string in it (dict keys too, lists, tuples) made safe."""
    if isinstance(value, str):
        return postgres_safe_text(value)
    if isinstance(value, dict):
        return {postgres_safe(k): postgres_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [postgres_safe(v) for v in value]
    if isinstance(value, tuple):
        return tuple(postgres_safe(v) for v in value)
    return value


def postgres_safe_json_dumps(value: Any) -> str:
    """The engines' JSON serializer: the document made safe, then dumped."""
    return json.dumps(postgres_safe(value))


def postgres_safe_parameters(parameters: Any) -> Any:
    """Statement parameters as the driver gets them (a dict, a sequence, or a list of them
    for executemany), with their strings made safe."""
    if isinstance(parameters, dict):
        return {k: postgres_safe_text(v) if isinstance(v, str) else v for k, v in parameters.items()}
    if isinstance(parameters, list | tuple):
        if parameters and isinstance(parameters[0], dict | list | tuple):
            return type(parameters)(postgres_safe_parameters(p) for p in parameters)
        return type(parameters)(postgres_safe_text(v) if isinstance(v, str) else v for v in parameters)
    return parameters
