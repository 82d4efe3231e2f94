"""Slash-command text → tool arguments. Pure.

Rules, in order:
1. `--public` as the first or last word asks for an answer in the channel instead of one only the
   caller sees; it is removed from the text. (A flag rather than a bare `public` word, so a
   city or a search called "public" still works.)
2. A tool with a text parameter (see `FunctionSpec.text_parameter`) takes the whole remaining
   text as that parameter, e.g. `/weather New York`; one pair of surrounding quotes is dropped.
   Empty text leaves an optional parameter at its default. When such a tool has further
   parameters and every word is `name=value` with one of its parameter names, the text is read
   as pairs instead, so those parameters stay reachable (`/shout text=hi times=2`).
3. Otherwise the text is a JSON object (`{"a": 1}`) or `name=value` pairs split like a shell
   (`city="New York" days=3`); values are read as the annotated types (lists as `a,b,c` or JSON).
Bad input raises ArgumentError carrying the usage line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from bot.tools import bounded_json
from bot.tools.errors import ArgumentError
from bot.tools.schema import FunctionSpec, validate_arguments

PUBLIC_FLAG = "--public"


@dataclass(frozen=True)
class SlashInvocation:
    arguments: dict[str, Any]
    public: bool


def split_public_flag(text: str) -> tuple[str, bool]:
    """(text without the flag, whether `--public` was given first or last)."""
    words = text.split()
    if words and words[-1] == PUBLIC_FLAG:
        return text.strip()[: -len(PUBLIC_FLAG)].strip(), True
    if words and words[0] == PUBLIC_FLAG:
        return text.strip()[len(PUBLIC_FLAG) :].strip(), True
    return text.strip(), False


def default_usage(command: str, spec: FunctionSpec) -> str:
    """A usage line derived from the parameters, e.g. `/weather <city>` or `/search query=<text>`."""
    text_param = spec.text_parameter()
    if text_param is not None:
        words = [f"<{text_param.name}>" if text_param.required else f"[{text_param.name}]"]
    else:
        words = [f"{p.name}=<{p.type.noun()}>" if p.required else f"[{p.name}=<{p.type.noun()}>]" for p in spec.params]
    return " ".join([f"/{command}", *words]).strip()


def parse_slash_text(spec: FunctionSpec, text: str, usage: str) -> SlashInvocation:
    """Arguments for the tool from what the person typed after the command."""
    body, public = split_public_flag(text)
    text_param = spec.text_parameter()
    if text_param is not None and not (len(spec.params) > 1 and _all_known_pairs(spec, body)):
        arguments: dict[str, Any] = {}
        value = _drop_quotes(body)
        if value:
            try:
                arguments[text_param.name] = text_param.type.from_text(value, repr(text_param.name))
            except ValueError as exc:
                raise ArgumentError(f"{exc}.", usage) from None
        elif text_param.required:
            raise ArgumentError(f"Please give the {text_param.name}.", usage)
        return SlashInvocation(validate_arguments(spec, arguments, usage), public)
    if body.startswith("{"):
        return SlashInvocation(validate_arguments(spec, _json_object(body, usage), usage), public)
    return SlashInvocation(validate_arguments(spec, _pairs(spec, body, usage), usage), public)


def _all_known_pairs(spec: FunctionSpec, body: str) -> bool:
    try:
        words = shlex.split(body)
    except ValueError:
        return False
    return bool(words) and all(spec.param(word.partition("=")[0]) and "=" in word for word in words)


def _drop_quotes(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def _json_object(body: str, usage: str) -> dict[str, Any]:
    try:
        value = bounded_json.loads(body)
    except bounded_json.TooDeep as exc:
        raise ArgumentError(f"That JSON is refused: {exc}.", usage) from None
    except ValueError:
        raise ArgumentError("That looks like JSON but is not valid JSON.", usage) from None
    if not isinstance(value, dict):
        raise ArgumentError("Give the arguments as a JSON object or as name=value pairs.", usage)
    return value


def _pairs(spec: FunctionSpec, body: str, usage: str) -> dict[str, Any]:
    try:
        words = shlex.split(body)
    except ValueError:
        raise ArgumentError("A quote is not closed.", usage) from None
    arguments: dict[str, Any] = {}
    for word in words:
        name, sep, raw = word.partition("=")
        if not sep or not name:
            raise ArgumentError(f"Expected name=value, got {word!r}.", usage)
        param = spec.param(name)
        if param is None:
            accepted = ", ".join(p.name for p in spec.params) or "nothing"
            raise ArgumentError(f"Unknown argument {name!r}; this command takes {accepted}.", usage)
        if name in arguments:
            raise ArgumentError(f"{name!r} is given twice.", usage)
        try:
            arguments[name] = param.type.from_text(raw, repr(name))
        except ValueError as exc:
            raise ArgumentError(f"{exc}.", usage) from None
    return arguments
