"""Imports flow one way: the parts of `bot/` form layers, and each imports only from layers below.

Data flows Slack → web (verify, record, enqueue) → queue → worker (limits → inference → tools)
→ Slack adapters; the import graph is that flow upside down: what a layer uses sits below it.
Imports inside functions count; those under ``if TYPE_CHECKING:`` (annotations only) do not.

A part is a subpackage of ``bot`` (``bot.queue``) or a top-level module (``bot.runtime``). The Slack
app (``bot.slack_app``: the Bolt app, its listeners, Socket Mode and the manifest's commands) sits at
the top, while ``bot.slack`` holds only the Web API adapters the worker calls (clients, replies,
response_url, OAuth tokens); the built-in tools (``bot.builtin_tools``) sit above the tool machinery
they plug into and the features they expose.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"

# Lowest first. A part may import parts of earlier layers only (and itself).
LAYERS: list[set[str]] = [
    {"bot", "bot.failures", "bot.logs", "bot.moderation_policy", "bot.attachments"},  # import nothing from bot
    {"bot.config", "bot.db"},
    # bot.agent: steps, stops, feedback; bot.documents: what files are and their text (pure)
    {"bot.images", "bot.documents", "bot.limits", "bot.queue", "bot.idempotency", "bot.agent"},
    {"bot.inference", "bot.slack"},  # bot.slack: the adapters
    {"bot.history"},
    {"bot.tools"},
    {"bot.mcp"},  # tools from MCP servers: entries of the tool registry
    {"bot.channel_settings"},  # per-channel settings: read by every answer, set by admins
    {"bot.conversation"},
    {"bot.moderation"},
    {"bot.retention"},
    {"bot.builtin_tools", "bot.models"},
    {"bot.runtime", "bot.diagnostics", "bot.stats"},
    {"bot.slack_app", "bot.chat"},
    {"bot.web"},
    {"bot.cli"},
]
# The low layers, and all they may import (besides the base: bot.failures, bot.logs).
LOW_MAY_IMPORT = {
    "bot.db": set(),
    "bot.images": set(),
    "bot.documents": set(),
    "bot.queue": {"bot.db"},
    "bot.limits": {"bot.db"},
    "bot.inference": {"bot.limits", "bot.db"},
}
BASE = {"bot.failures", "bot.logs", "bot.attachments"}  # bot.attachments: what is attached (pure data)


def part_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def module_name(path: Path) -> str:
    relative = path.relative_to(BOT.parent).with_suffix("")
    names = list(relative.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def imported_modules(path: Path, here: str | None = None) -> set[str]:
    """The bot modules ``path`` (module ``here``) imports, absolutely or relatively, outside
    TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    here = here or module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # `from bot import history` imports the module bot.history.
            found.update(f"{target}.{alias.name}" for alias in node.names if target == "bot")
    return {name for name in found if name == "bot" or name.startswith("bot.")}


def part_graph() -> dict[str, dict[str, set[str]]]:
    """{part: {imported part: {importing module, ...}}}, without a part's imports of itself."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(BOT.rglob("*.py")):
        source = module_name(path)
        graph[part_of(source)]  # every part is a node, even one that imports nothing
        for target in imported_modules(path):
            if target == "bot":
                continue
            if part_of(source) != part_of(target):
                graph[part_of(source)][part_of(target)].add(source)
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    """One cycle of parts as a path (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(part: str) -> int:
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"{part} is in no layer: add it to LAYERS in {__file__}")


def test_the_parts_of_bot_have_no_import_cycle():
    cycle = find_cycle(part_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_every_part_imports_only_from_layers_below_it():
    wrong = []
    for source, targets in sorted(part_graph().items()):
        for target, modules in sorted(targets.items()):
            if layer_of(target) >= layer_of(source):
                wrong.append(f"{source} imports {target} (in {', '.join(sorted(modules))})")
    assert not wrong, "imports that flow upwards:\n" + "\n".join(wrong)


def test_low_layers_import_nothing_above_them():
    graph = part_graph()
    for part, allowed in LOW_MAY_IMPORT.items():
        above = set(graph[part]) - allowed - BASE
        assert not above, f"{part} imports {sorted(above)}: {dict(graph[part])}"


def test_only_the_slack_app_wires_listeners():
    importers = {
        module_name(path)
        for path in BOT.rglob("*.py")
        if any(target.startswith("bot.slack_app.listeners") for target in imported_modules(path))
    }
    assert {part_of(module) for module in importers} <= {"bot.slack_app"}, importers


def test_the_checker_sees_a_cycle_and_an_upward_import():
    assert find_cycle({"a": {"b": {"a.x"}}, "b": {"c": {"b.y"}}, "c": {"a": {"c.z"}}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": {"a.x"}}, "b": {}}) is None
    assert layer_of("bot.queue") < layer_of("bot.conversation")
    assert part_of("bot.slack_app.listeners.messages") == "bot.slack_app"
    assert part_of("bot.slack.replies") == "bot.slack"


def test_imports_are_read_from_every_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "import bot.queue.store\n"
        "from bot import history\n"
        "from .limits import window\n"
        "def later():\n"
        "    from bot.runtime import build_worker\n"
        "if TYPE_CHECKING:\n"
        "    from bot.web import app\n",
        encoding="utf-8",
    )
    assert imported_modules(sample, "bot.sample") == {
        "bot",
        "bot.queue.store",
        "bot.history",
        "bot.limits",
        "bot.runtime",
    }
