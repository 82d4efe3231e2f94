"""What the catalog knows of a server and its tools (pure data, no SDK: the web process reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UP, DOWN, UNAUTHORIZED, UNKNOWN = "up", "down", "unauthorized", "unknown"


@dataclass(frozen=True)
class McpTool:
    """One server tool as offered to the model."""

    server: str
    remote_name: str  # the server's name for it
    name: str  # the function name the model uses
    description: str
    parameters: dict[str, Any]
    read_only: bool

    @property
    def needs_approval(self) -> bool:
        return not self.read_only


@dataclass(frozen=True)
class ServerState:
    name: str
    status: str = UNKNOWN
    detail: str = ""  # a sentence when not up
    tools: tuple[McpTool, ...] = ()
    left_out: tuple[str, ...] = ()  # one sentence per tool not offered
    checked_at: float = 0.0  # time.monotonic() of the refresh
    entries: tuple[Any, ...] = field(default=(), repr=False, compare=False)  # registry Tools

    @property
    def is_up(self) -> bool:
        return self.status == UP
