"""The tool registry: one definition serves slash commands and model function calling.

A tool is a typed function with a docstring whose first parameter is the `ToolContext`:

    registry = ToolRegistry()

    @registry.tool(command="weather", usage="/weather <city>", timeout=10.0)
    def get_weather(ctx: ToolContext, city: str) -> str:
        '''Current weather and today's range for a city.

        Args:
            city: City name, optionally with a country, e.g. "Paris, France".
        '''

The other parameters become the JSON-schema parameters (see `bot.tools.schema`). Permissions are
checked here, in `check_permission`, against the person who triggered the work.

Tools that come and go (an MCP server's, bot.mcp) join through a *source*: an object whose
`tools()` returns the entries it offers now. They are ordinary entries otherwise: listed,
looked up, filtered and run like the rest. A job takes one `snapshot()` so every round, the
approval gate and the runner agree on the same tools while sources change underneath.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from bot.tools.errors import PermissionDenied, ToolDefinitionError
from bot.tools.schema import FunctionSpec, describe_function
from bot.tools.slash_args import default_usage

if TYPE_CHECKING:
    import httpx
    from slack_sdk import WebClient
    from sqlalchemy.orm import sessionmaker

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RESULT_CHARS = 4000
# Slack's rule for slash command names (without the slash).
COMMAND_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_COMMAND_DESCRIPTION_CHARS = 100


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use besides its arguments; built by the caller, never by the model."""

    team_id: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    user_id: str | None = None
    user_is_admin: bool = False
    slack: WebClient | None = None
    db: sessionmaker | None = None
    settings: Any = None
    http: httpx.Client | None = None
    # The person typed this command themselves (a slash command), rather than the model calling it.
    typed_by_person: bool = False


@dataclass(frozen=True)
class Permission:
    """Who may use a tool. Combine with `|`: `Permission.ADMINS | Permission.users({"U1"})`."""

    everyone: bool = False
    admins: bool = False
    user_ids: frozenset[str] = frozenset()

    EVERYONE: ClassVar[Permission]
    ADMINS: ClassVar[Permission]

    @classmethod
    def users(cls, user_ids: Iterable[str]) -> Permission:
        return cls(user_ids=frozenset(user_ids))

    def __or__(self, other: Permission) -> Permission:
        return Permission(
            everyone=self.everyone or other.everyone,
            admins=self.admins or other.admins,
            user_ids=self.user_ids | other.user_ids,
        )

    @property
    def is_empty(self) -> bool:
        return not (self.everyone or self.admins or self.user_ids)

    def allows(self, user_id: str | None, user_is_admin: bool) -> bool:
        return self.everyone or (self.admins and user_is_admin) or (user_id in self.user_ids)

    def refusal(self, tool_label: str) -> str:
        if self.admins and self.user_ids:
            return f"Only workspace admins and people given access can use {tool_label}."
        if self.admins:
            return f"Only workspace admins can use {tool_label}."
        return f"Only people given access can use {tool_label}; ask a workspace admin."


Permission.EVERYONE = Permission(everyone=True)
Permission.ADMINS = Permission(admins=True)


@dataclass(frozen=True)
class Tool:
    func: Callable[..., Any]
    spec: FunctionSpec
    command: str | None
    usage: str
    permission: Permission
    timeout: float
    max_result_chars: int
    # Reading or changing state: a call that changes state waits for the asker's approval when
    # the model makes it (bot.tools.approval_logic). True, False, or a test of the arguments.
    changes_state: bool | Callable[[dict], bool] = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        """How people know the tool: its slash command if it has one."""
        return f"/{self.command}" if self.command else self.name


def first_sentence(text: str, limit: int = MAX_COMMAND_DESCRIPTION_CHARS) -> str:
    """The first sentence of `text`, cut to `limit` characters: Slack's command picker is narrow."""
    sentence = text.split(". ", 1)[0].strip()
    if not sentence.endswith("."):
        sentence += "."
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


class SlashCommandSpec(NamedTuple):
    """One entry of the Slack manifest's `features.slash_commands`."""

    command: str
    description: str
    usage_hint: str


class ToolSource(Protocol):
    """Tools that can change while the bot runs (bot.mcp.catalog.McpCatalog)."""

    def tools(self) -> Iterable[Tool]: ...


class ToolRegistry:
    """Tools by name. Filled at start-up, then only read (safe to share between threads);
    sources' tools are read each time, so take a `snapshot()` for one unit of work."""

    def __init__(
        self,
        *,
        default_timeout: float = DEFAULT_TIMEOUT_SECONDS,
        default_max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    ):
        self.default_timeout = default_timeout
        self.default_max_result_chars = default_max_result_chars
        self._tools: dict[str, Tool] = {}
        self._sources: list[ToolSource] = []

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()})"

    def tool(
        self,
        *,
        name: str | None = None,
        command: str | None = None,
        usage: str | None = None,
        permission: Permission = Permission.EVERYONE,
        timeout: float | None = None,
        max_result_chars: int | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of `add`; returns the function unchanged."""

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            self.add(
                func,
                name=name,
                command=command,
                usage=usage,
                permission=permission,
                timeout=timeout,
                max_result_chars=max_result_chars,
            )
            return func

        return decorate

    def add(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        command: str | None = None,
        usage: str | None = None,
        permission: Permission = Permission.EVERYONE,
        timeout: float | None = None,
        max_result_chars: int | None = None,
        changes_state: bool | Callable[[dict], bool] = False,
    ) -> Tool:
        """Register `func`; raise ToolDefinitionError when it or the options are malformed.
        `changes_state`: the tool changes something (deletes, switches, posts) rather than only
        reading; when the model calls it, the person who asked must approve first."""
        spec = describe_function(func, name)
        command = command.lstrip("/") if command else None
        if command is not None and not COMMAND_PATTERN.match(command):
            raise ToolDefinitionError(
                f"tool {spec.name}: command {command!r} must be lowercase letters, digits, '-' or '_' (at most 32)"
            )
        if permission.is_empty:
            raise ToolDefinitionError(f"tool {spec.name}: a permission that allows nobody")
        timeout = self.default_timeout if timeout is None else timeout
        max_chars = self.default_max_result_chars if max_result_chars is None else max_result_chars
        if timeout <= 0 or max_chars < 100:
            raise ToolDefinitionError(f"tool {spec.name}: timeout must be positive and max_result_chars at least 100")
        tool = Tool(
            func=func,
            spec=spec,
            command=command,
            usage=usage or (default_usage(command, spec) if command else ""),
            permission=permission,
            timeout=timeout,
            max_result_chars=max_chars,
            changes_state=changes_state,
        )
        self._check_conflicts([tool])
        self._tools[tool.name] = tool
        return tool

    def _check_conflicts(self, tools: Iterable[Tool]) -> None:
        names = set(self._tools)
        commands = {t.command for t in self._tools.values() if t.command}
        for tool in tools:
            if tool.name in names:
                raise ToolDefinitionError(f"a tool named {tool.name} is already registered")
            if tool.command and tool.command in commands:
                raise ToolDefinitionError(f"the command /{tool.command} is already registered")
            names.add(tool.name)
            if tool.command:
                commands.add(tool.command)

    def include(self, other: ToolRegistry) -> None:
        """Add every tool of `other`, or none of them if any name or command is taken."""
        tools = list(other)
        self._check_conflicts(tools)
        self._tools.update((tool.name, tool) for tool in tools)

    def add_source(self, source: ToolSource) -> None:
        """Offer `source`'s tools too; a name a tool already has here keeps the tool here."""
        self._sources.append(source)

    def _current(self) -> dict[str, Tool]:
        if not self._sources:
            return self._tools
        tools = dict(self._tools)
        for source in self._sources:
            for tool in source.tools():
                tools.setdefault(tool.name, tool)
        return tools

    def filtered(self, keep: Callable[[Tool], bool]) -> ToolRegistry:
        """A fixed registry holding the tools offered now for which `keep` is true."""
        chosen = self.empty_like()
        chosen._tools = {name: tool for name, tool in self._current().items() if keep(tool)}
        return chosen

    def snapshot(self) -> ToolRegistry:
        """Every tool offered now, fixed: sources changing later do not change it."""
        return self.filtered(lambda tool: True)

    def empty_like(self) -> ToolRegistry:
        """A registry with the same defaults and no tools (plugins register into one first)."""
        return ToolRegistry(
            default_timeout=self.default_timeout, default_max_result_chars=self.default_max_result_chars
        )

    def get(self, name: str) -> Tool | None:
        return self._current().get(name)

    def for_command(self, command: str) -> Tool | None:
        wanted = command.lstrip("/").lower()
        return next((tool for tool in self._tools.values() if tool.command == wanted), None)

    def __iter__(self) -> Iterator[Tool]:
        return iter(sorted(self._current().values(), key=lambda tool: tool.name))

    def __len__(self) -> int:
        return len(self._current())

    def __contains__(self, name: object) -> bool:
        return name in self._current()

    def names(self) -> list[str]:
        return [tool.name for tool in self]

    def openai_tools(self) -> list[dict[str, Any]]:
        """Tool definitions for chat completions, sorted by name.

        Built fresh on every call from frozen specs, so the JSON is the same bytes in every
        process (prompt caching keys on it) and callers may modify what they get.
        """
        return [tool.spec.openai_schema() for tool in self]

    def slash_commands(self) -> list[SlashCommandSpec]:
        """(command, short description, usage hint) of every tool with a slash command, sorted."""
        specs = []
        for tool in self:
            if not tool.command:
                continue
            hint = tool.usage
            if hint.startswith(f"/{tool.command}"):
                hint = hint[len(tool.command) + 1 :].strip()
            specs.append(SlashCommandSpec(f"/{tool.command}", first_sentence(tool.spec.description), hint))
        return sorted(specs)

    def check_permission(self, tool: Tool, ctx: ToolContext) -> None:
        """Raise PermissionDenied unless the person who triggered the work may use `tool`."""
        if not tool.permission.allows(ctx.user_id, ctx.user_is_admin):
            raise PermissionDenied(tool.permission.refusal(tool.label))
