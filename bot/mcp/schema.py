"""An MCP tool's input schema as parameters the provider accepts (pure).

The model's provider takes a function's ``parameters`` as a JSON schema object. Anthropic (and
so Heroku's Claude models) refuses two shapes MCP servers do send, and one refused tool fails
every request that carries it:
* a root that is not an object schema: "input_schema: Input should be a valid dictionary or
  object" / the root needs ``"type": "object"``;
* ``oneOf``, ``allOf`` or ``anyOf`` at the root: "input_schema does not support oneOf, allOf,
  or anyOf at the top level" (Anthropic's API error; the tool-use docs require an object root).

`provider_schema` converts what it safely can (a missing root type; a root combinator whose
branches only list properties and required ones, as servers use for "give at least one of")
and refuses the rest, with a sentence for the log.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

COMBINATORS = ("anyOf", "oneOf", "allOf")
# What a root combinator's branch may hold for it to be folded into the root.
_FOLDABLE_BRANCH_KEYS = {"type", "properties", "required", "title", "description"}


class SchemaRefused(ValueError):
    """The schema cannot be made acceptable; str() says why in a sentence."""


def provider_schema(schema: Any) -> tuple[dict[str, Any], list[str]]:
    """(parameters for the provider, what was changed) or SchemaRefused. Never modifies `schema`."""
    if schema is None:
        return {"type": "object", "properties": {}}, ["no input schema: the tool takes no arguments"]
    if not isinstance(schema, Mapping):
        raise SchemaRefused("its input schema is not a JSON object")
    result = copy.deepcopy(dict(schema))
    changes: list[str] = []
    kind = result.get("type")
    if kind is None:
        result["type"] = "object"
        changes.append('the root had no type: set to "object"')
    elif isinstance(kind, list) and "object" in kind:
        result["type"] = "object"
        changes.append(f'the root type {kind} became "object"')
    elif kind != "object":
        raise SchemaRefused(f"its input schema's root is of type {kind!r}, not an object")
    if "properties" in result and not isinstance(result["properties"], Mapping):
        raise SchemaRefused("its input schema's properties are not an object")
    for keyword in COMBINATORS:
        if keyword in result:
            changes.append(_fold(result, keyword))
    result.setdefault("properties", {})
    return result, changes


def _fold(schema: dict[str, Any], keyword: str) -> str:
    """Fold a root combinator into the root; raise SchemaRefused when that would change meaning
    beyond "these fields are optional now" (the server still checks its own rules)."""
    branches = schema.pop(keyword)
    if not isinstance(branches, list) or not branches:
        raise SchemaRefused(f"its input schema's root {keyword} is not a list of schemas")
    properties = dict(schema.get("properties") or {})
    required = list(schema.get("required") or [])
    alternatives: list[list[str]] = []
    for branch in branches:
        if not isinstance(branch, Mapping) or set(branch) - _FOLDABLE_BRANCH_KEYS:
            raise SchemaRefused(f"its input schema has a root {keyword} whose branches cannot be merged")
        if branch.get("type", "object") != "object" or not isinstance(branch.get("properties", {}), Mapping):
            raise SchemaRefused(f"its input schema has a root {keyword} with a branch that is not an object")
        for name, sub in (branch.get("properties") or {}).items():
            if name in properties and properties[name] != sub:
                raise SchemaRefused(f"its input schema's root {keyword} gives {name!r} two different schemas")
            properties[name] = sub
        names = [name for name in branch.get("required") or [] if isinstance(name, str)]
        if keyword == "allOf":
            required += [name for name in names if name not in required]
        elif names:
            alternatives.append(names)
    schema["properties"] = properties
    if required:
        schema["required"] = required
    if alternatives:
        choices = "; or ".join(", ".join(names) for names in alternatives)
        rule = f"Give {'exactly' if keyword == 'oneOf' else 'at least'} one of: {choices}."
        schema["description"] = f"{schema['description']} {rule}".strip() if schema.get("description") else rule
        return f"the root {keyword} became optional properties and the sentence {rule!r}"
    return f"the root {keyword} was merged into the root"
