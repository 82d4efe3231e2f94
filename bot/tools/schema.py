"""Function schemas from type hints and Google-style docstrings, and argument checking against them.

Pure: reads only the function's signature, annotations and docstring. The first parameter of a
tool receives the context and is left out of the schema. Supported parameter types: str, int,
float, bool, `Literal[...]` of one of those, `list[X]` / `Sequence[X]`, `dict[str, X]`, and any of
these `| None`. A parameter is required unless it has a default or accepts None.
"""

from __future__ import annotations

import collections.abc
import copy
import enum
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.tools import bounded_json
from bot.tools.errors import ArgumentError, ToolDefinitionError

# OpenAI's rule for function names.
TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_ARGS_HEADERS = ("args", "arguments", "parameters", "params")
_SECTION_HEADER = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
_ARG_LINE = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)$")


class _NoDefault(enum.Enum):
    """Marks a parameter without a default (None is a real default, so it cannot mark that).

    Not ``inspect.Parameter.empty``: that is a class, and the dataclass machinery of some
    Python 3.11 releases (Debian's 3.11.2) takes a class default for "no default" and then
    rejects the fields after it."""

    NO_DEFAULT = "no default"


NO_DEFAULT = _NoDefault.NO_DEFAULT

Kind = Literal["string", "integer", "number", "boolean", "array", "object"]

_NOUNS: dict[str, str] = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a JSON object",
}
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True)
class ValueType:
    """The JSON type of one parameter (or of a list's items)."""

    kind: Kind
    items: ValueType | None = None
    choices: tuple[Any, ...] = ()

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.kind}
        if self.items is not None:
            schema["items" if self.kind == "array" else "additionalProperties"] = self.items.json_schema()
        if self.choices:
            schema["enum"] = list(self.choices)
        return schema

    def noun(self) -> str:
        if self.choices:
            return "one of " + ", ".join(json.dumps(choice) for choice in self.choices)
        if self.kind == "array" and self.items is not None:
            return f"a list, each item {self.items.noun()}"
        return _NOUNS[self.kind]

    def check(self, value: Any, where: str) -> Any:
        """Return `value` as the function should receive it, or raise ValueError with a sentence."""
        checked = self._check_kind(value, where)
        if self.choices and checked not in self.choices:
            raise ValueError(f"{where} must be {self.noun()}, got {json.dumps(value)}")
        return checked

    def _check_kind(self, value: Any, where: str) -> Any:
        wrong = ValueError(f"{where} must be {self.noun()}")
        if self.kind == "string":
            if not isinstance(value, str):
                raise wrong
            return value
        if isinstance(value, bool) and self.kind != "boolean":
            raise wrong
        if self.kind == "integer":
            # Models sometimes send 3.0 for an integer; accept it when nothing is lost.
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if not isinstance(value, int):
                raise wrong
            return value
        if self.kind == "number":
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise wrong
            return float(value)
        if self.kind == "boolean":
            if not isinstance(value, bool):
                raise wrong
            return value
        if self.kind == "array":
            if not isinstance(value, list):
                raise wrong
            if self.items is None:
                return value
            return [self.items.check(item, f"{where} item {index + 1}") for index, item in enumerate(value)]
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise wrong
        if self.items is None:
            return value
        return {key: self.items.check(item, f"{where}[{key!r}]") for key, item in value.items()}

    def from_text(self, text: str, where: str) -> Any:
        """Read a value typed by a person (a slash command), then check it."""
        text = text.strip() if self.kind != "string" else text
        if self.kind == "string":
            value: Any = text
        elif self.kind == "integer":
            value = _parse_or_fail(int, text, where, self)
        elif self.kind == "number":
            value = _parse_or_fail(float, text, where, self)
        elif self.kind == "boolean":
            lowered = text.lower()
            if lowered not in _TRUE_WORDS | _FALSE_WORDS:
                raise ValueError(f"{where} must be true or false (or yes/no), got {text!r}")
            value = lowered in _TRUE_WORDS
        elif self.kind == "array" and not text.startswith("["):
            # "a, b, c" reads as a list; a JSON array works too.
            parts = [part.strip() for part in text.split(",") if part.strip()]
            item_type = self.items or ValueType("string")
            value = [item_type.from_text(part, f"{where} item {i + 1}") for i, part in enumerate(parts)]
        else:
            try:
                value = bounded_json.loads(text)
            except bounded_json.TooDeep as exc:
                raise ValueError(f"{where} is refused: {exc}") from None
            except ValueError:
                raise ValueError(f"{where} must be {self.noun()}, written as JSON") from None
        return self.check(value, where)


def _parse_or_fail(kind: Callable[[str], Any], text: str, where: str, value_type: ValueType) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{where} must be {value_type.noun()}, got {text!r}") from None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: ValueType
    required: bool
    nullable: bool = False
    default: Any = NO_DEFAULT
    description: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def json_schema(self) -> dict[str, Any]:
        schema = self.type.json_schema()
        if self.description:
            schema["description"] = self.description
        if self.has_default and isinstance(self.default, str | int | float | bool):
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    description: str
    params: tuple[ParamSpec, ...] = field(default=())
    # A JSON schema given as is (an MCP server's tool): used instead of `params`, and arguments
    # are only checked for its required and unknown keys (the server checks the rest).
    json_schema: Mapping[str, Any] | None = None

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    def parameters_schema(self) -> dict[str, Any]:
        if self.json_schema is not None:
            return copy.deepcopy(dict(self.json_schema))
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.params},
        }
        required = [p.name for p in self.params if p.required]
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters_schema(),
            },
        }

    def text_parameter(self) -> ParamSpec | None:
        """The parameter that takes a slash command's whole text, if the tool has one.

        That is the only required parameter when it is a string, or, for a tool without
        required parameters, its only parameter when that is a string.
        """
        required = [p for p in self.params if p.required]
        candidates = required if required else list(self.params)
        if len(candidates) == 1 and candidates[0].type.kind == "string":
            return candidates[0]
        return None


# --- building a spec from a function ---------------------------------------------------------


def value_type_for(annotation: Any) -> tuple[ValueType, bool]:
    """Map a type hint to (ValueType, accepts None). Raise ToolDefinitionError when unsupported."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return value_type_for(args[0])
    if origin in (typing.Union, types.UnionType):
        others = [arg for arg in args if arg is not type(None)]
        if len(others) != 1:
            raise ToolDefinitionError(f"unions other than `X | None` are not supported: {annotation!r}")
        inner, _ = value_type_for(others[0])
        return inner, True
    if origin is Literal:
        return _literal_type(args), False
    if annotation in (list, collections.abc.Sequence) or origin in (list, collections.abc.Sequence):
        items = value_type_for(args[0])[0] if args else None
        return ValueType("array", items=items), False
    if annotation is dict or origin is dict:
        if args and args[0] is not str:
            raise ToolDefinitionError(f"dictionary keys must be str: {annotation!r}")
        items = value_type_for(args[1])[0] if args else None
        return ValueType("object", items=items), False
    scalar = {str: "string", bool: "boolean", int: "integer", float: "number"}.get(annotation)
    if scalar is None:
        raise ToolDefinitionError(f"unsupported parameter type {annotation!r}")
    return ValueType(scalar), False


def _literal_type(values: tuple[Any, ...]) -> ValueType:
    kinds = {type(value) for value in values}
    if len(kinds) != 1 or not kinds <= {str, int, float, bool}:
        raise ToolDefinitionError(f"Literal values must share one of str/int/float/bool: {values!r}")
    kind = {str: "string", bool: "boolean", int: "integer", float: "number"}[kinds.pop()]
    return ValueType(kind, choices=tuple(values))


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(first paragraph as one line, {parameter: description}) from a Google-style docstring."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION_HEADER.match(line):
            break
        summary.append(line.strip())

    descriptions: dict[str, str] = {}
    in_args = False
    header_indent = 0
    item_indent: int | None = None
    current: str | None = None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        header = _SECTION_HEADER.match(line.strip())
        if not in_args:
            if header and header.group(1).lower() in _ARGS_HEADERS:
                in_args, header_indent, item_indent, current = True, indent, None, None
            continue
        if not line.strip():
            continue
        if indent <= header_indent:
            in_args = bool(header and header.group(1).lower() in _ARGS_HEADERS)
            item_indent, current = None, None
            continue
        if item_indent is None:
            item_indent = indent
        match = _ARG_LINE.match(line.strip())
        if indent == item_indent and match:
            current = match.group("name")
            descriptions[current] = match.group("text").strip()
        elif current is not None:
            descriptions[current] = f"{descriptions[current]} {line.strip()}".strip()
    return " ".join(summary), descriptions


def describe_function(func: Callable[..., Any], name: str | None = None) -> FunctionSpec:
    """Build the spec of a tool function whose first parameter receives the context."""
    tool_name = name or getattr(func, "__name__", "")
    if not TOOL_NAME_PATTERN.match(tool_name):
        raise ToolDefinitionError(f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-'")
    description, documented = parse_docstring(inspect.getdoc(func))
    if not description:
        raise ToolDefinitionError(f"tool {tool_name} needs a docstring: its first paragraph tells the model")

    parameters = list(inspect.signature(func).parameters.values())
    if not parameters:
        raise ToolDefinitionError(f"tool {tool_name} must take the context as its first parameter")
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"tool {tool_name} has annotations that cannot be resolved: {exc}") from exc

    params = []
    for parameter in parameters[1:]:
        where = f"tool {tool_name}, parameter {parameter.name}"
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise ToolDefinitionError(f"{where}: *args, **kwargs and positional-only are not supported")
        if parameter.name not in hints:
            raise ToolDefinitionError(f"{where}: needs a type annotation")
        try:
            value_type, nullable = value_type_for(hints[parameter.name])
        except ToolDefinitionError as exc:
            raise ToolDefinitionError(f"{where}: {exc}") from None
        params.append(
            ParamSpec(
                name=parameter.name,
                type=value_type,
                required=parameter.default is inspect.Parameter.empty and not nullable,
                nullable=nullable,
                default=NO_DEFAULT if parameter.default is inspect.Parameter.empty else parameter.default,
                description=documented.get(parameter.name, ""),
            )
        )
    unknown = sorted(set(documented) - {p.name for p in params})
    if unknown:
        raise ToolDefinitionError(f"tool {tool_name} documents parameters it does not have: {unknown}")
    return FunctionSpec(name=tool_name, description=description, params=tuple(params))


# --- checking arguments ----------------------------------------------------------------------


def validate_arguments(spec: FunctionSpec, arguments: Mapping[str, Any], usage: str = "") -> dict[str, Any]:
    """Keyword arguments for the tool function, or ArgumentError listing every problem.

    A missing or null optional argument is left out so the function's default applies; a
    nullable parameter without a default receives None.
    """
    if spec.json_schema is not None:
        return _validate_against_json_schema(spec, arguments, usage)
    problems = [f"unknown argument {key!r}" for key in arguments if spec.param(key) is None]
    values: dict[str, Any] = {}
    for param in spec.params:
        value = arguments.get(param.name)
        if value is None:
            if param.required:
                problems.append(f"missing required argument {param.name!r} ({param.type.noun()})")
            elif param.nullable and not param.has_default:
                values[param.name] = None
            continue
        try:
            values[param.name] = param.type.check(value, repr(param.name))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        accepted = ", ".join(p.name for p in spec.params) or "no arguments"
        raise ArgumentError(f"Invalid arguments for {spec.name}: {'; '.join(problems)}. It takes: {accepted}.", usage)
    return values


def _validate_against_json_schema(spec: FunctionSpec, arguments: Mapping[str, Any], usage: str) -> dict[str, Any]:
    schema = spec.json_schema or {}
    properties = schema.get("properties") or {}
    problems = [
        f"missing required argument {name!r}"
        for name in schema.get("required") or []
        if isinstance(name, str) and arguments.get(name) is None
    ]
    if schema.get("additionalProperties") is False:
        problems += [f"unknown argument {key!r}" for key in arguments if key not in properties]
    if problems:
        accepted = ", ".join(properties) or "no arguments"
        raise ArgumentError(f"Invalid arguments for {spec.name}: {'; '.join(problems)}. It takes: {accepted}.", usage)
    return dict(arguments)
