"""Run tools for the model or a slash command. Never raises: every failure becomes a text result.

Each call runs in its own daemon thread and is waited for at most the tool's timeout. A thread
cannot be killed, so a tool that overstays keeps running in the background until it returns;
its result is then dropped. Tools should therefore pass timeouts to their own I/O as well.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from bot.tools import bounded_json
from bot.tools.errors import ArgumentError, PermissionDenied, ToolFailed
from bot.tools.registry import Tool, ToolContext, ToolRegistry
from bot.tools.schema import validate_arguments
from bot.tools.slash_args import parse_slash_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    content: str


@dataclass(frozen=True)
class SlashCommandResult:
    result: ToolResult
    public: bool  # the caller asked for `--public`: answer in the channel, not just to them


class ToolTimedOut(Exception):
    pass


def result_text(value: Any) -> str:
    """What a tool returned, as the text the model or the person reads."""
    if value is None:
        return "Done."
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def truncate_result(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` characters, ending with a note when cut."""
    if len(text) <= max_chars:
        return text
    note = f"\n[truncated: showing the first {{kept}} of {len(text)} characters]"
    kept = max_chars - len(note.format(kept=max_chars))
    if kept <= 0:
        return text[:max_chars]
    return text[:kept] + note.format(kept=kept)


def run_tool(registry: ToolRegistry, name: str, arguments_json: str, ctx: ToolContext) -> ToolResult:
    """Run one model tool call: `arguments_json` is the JSON object the model sent."""
    tool = registry.get(name)
    if tool is None:
        known = ", ".join(registry.names()) or "none"
        return ToolResult(False, f"There is no tool named {name!r}. Available tools: {known}.")
    try:
        arguments = bounded_json.loads(arguments_json) if arguments_json.strip() else {}
    except bounded_json.TooDeep as exc:
        return ToolResult(False, f"The arguments for {name} are refused: {exc}. Send a flatter JSON object.")
    except ValueError as exc:
        return ToolResult(False, f"The arguments for {name} are not valid JSON ({exc}). Send a JSON object.")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return ToolResult(False, f"The arguments for {name} must be a JSON object.")
    return invoke(registry, tool, arguments, ctx)


class RunsOnce(Protocol):
    """An approved call (bot.conversation.approval_gate): `run(execute)` calls `execute` at most
    once across every attempt of the job, and otherwise returns what the first run returned."""

    def run(self, execute: Callable[[], ToolResult]) -> ToolResult: ...


def run_tool_calls(
    registry: ToolRegistry,
    calls: Sequence[tuple[str, str, str]],
    ctx: ToolContext,
    *,
    max_workers: int = 8,
    once: Mapping[str, RunsOnce] | None = None,
) -> list[tuple[str, ToolResult]]:
    """Run (call id, tool name, arguments JSON) calls concurrently; results in the calls' order.
    `once`: the calls (by id) that must run at most once, through their guard."""
    if not calls:
        return []
    guards = once or {}

    def run(call: tuple[str, str, str]) -> tuple[str, ToolResult]:
        call_id, name, arguments_json = call
        guard = guards.get(call_id)
        if guard is not None:
            return call_id, guard.run(lambda: run_tool(registry, name, arguments_json, ctx))
        return call_id, run_tool(registry, name, arguments_json, ctx)

    if len(calls) == 1:
        return [run(calls[0])]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(calls)), thread_name_prefix="tool-call") as pool:
        return list(pool.map(run, calls))


def run_slash_command(registry: ToolRegistry, command: str, text: str, ctx: ToolContext) -> SlashCommandResult:
    """Run the tool behind `/command` with what the person typed after it."""
    tool = registry.for_command(command)
    if tool is None:
        return SlashCommandResult(ToolResult(False, f"There is no {command} command here."), False)
    try:
        registry.check_permission(tool, ctx)
        invocation = parse_slash_text(tool.spec, text, tool.usage)
    except (PermissionDenied, ArgumentError) as exc:
        return SlashCommandResult(ToolResult(False, str(exc)), False)
    return SlashCommandResult(invoke(registry, tool, invocation.arguments, ctx), invocation.public)


def invoke(registry: ToolRegistry, tool: Tool, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
    """Check permission and arguments, call the tool within its timeout, and shape the result."""
    try:
        registry.check_permission(tool, ctx)
        kwargs = validate_arguments(tool.spec, arguments)
        value = _call_with_timeout(tool, kwargs, ctx)
    except (PermissionDenied, ArgumentError, ToolFailed) as exc:
        logger.info("tool %s declined for user %s: %s", tool.name, ctx.user_id, type(exc).__name__)
        return ToolResult(False, str(exc))
    except ToolTimedOut:
        logger.warning("tool %s timed out after %.1f s", tool.name, tool.timeout)
        return ToolResult(False, f"{tool.name} did not finish within {tool.timeout:g} seconds and was stopped.")
    except Exception as exc:
        # The traceback helps us; argument values stay out of the log.
        logger.warning("tool %s raised %s", tool.name, type(exc).__name__, exc_info=exc)
        return ToolResult(False, f"{tool.name} failed unexpectedly ({type(exc).__name__}).")
    try:
        text = result_text(value)
    except Exception as exc:
        logger.warning("tool %s returned a result that cannot be shown: %s", tool.name, type(exc).__name__)
        return ToolResult(False, f"{tool.name} returned a result that cannot be shown.")
    return ToolResult(True, truncate_result(text, tool.max_result_chars))


def _call_with_timeout(tool: Tool, kwargs: dict[str, Any], ctx: ToolContext) -> Any:
    finished = threading.Event()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = tool.func(ctx, **kwargs)
        except Exception as exc:
            outcome["error"] = exc
        except BaseException as exc:
            # SystemExit and the like must not travel into the caller's thread.
            outcome["error"] = RuntimeError(f"the tool raised {type(exc).__name__}")
        finally:
            finished.set()

    threading.Thread(target=target, name=f"tool-{tool.name}", daemon=True).start()
    if not finished.wait(tool.timeout):
        raise ToolTimedOut
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
