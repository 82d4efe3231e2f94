"""Imports flow one way: the parts of `bot/` form layers, and each imports only from layers below.

Data flows Slack → web (verify, record, enqueue) → queue → worker (limits → inference → tools)
→ Slack adapters; the import graph is that flow upside down: what a layer uses sits below it.
Every import counts: inside functions and under ``if TYPE_CHECKING:`` alike (an annotation that
names a module above is a dependency too). No two parts import each other, and no two modules
do, directly or through others.

``python -m tests.unit.test_import_graph`` prints the layers this test checks, top first (the
docs quote it).

A part is a subpackage of ``bot`` (``bot.queue``) or a top-level module (``bot.runtime``). The Slack
app (``bot.slack_app``: the Bolt app, its listeners, Socket Mode and the manifest's commands) sits at
the top, while ``bot.slack`` holds only the Web API adapters the worker calls (clients, replies,
response_url, OAuth tokens); the built-in tools (``bot.builtin_tools``) sit above the tool machinery
they plug into and the features they expose.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"

# Lowest first. A part may import parts of earlier layers only (and itself).
LAYERS: list[set[str]] = [
    # import nothing from bot (bot.http: the process's one TLS context for HTTP clients)
    {"bot", "bot.failures", "bot.logs", "bot.moderation_policy", "bot.attachments", "bot.http"},
    {"bot.sandbox"},  # untrusted or costly work in a child process the OS can stop
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
    "bot.sandbox": set(),
    "bot.documents": {"bot.sandbox"},  # its bounded reader runs inside a sandbox child
    "bot.queue": {"bot.db"},
    "bot.limits": {"bot.db"},
    "bot.inference": {"bot.limits", "bot.db"},
}
BASE = {"bot.failures", "bot.logs", "bot.attachments", "bot.http"}  # bot.attachments: what is attached (pure data)


def part_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def module_name(path: Path) -> str:
    relative = path.relative_to(BOT.parent).with_suffix("")
    names = list(relative.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def imported_modules(path: Path, here: str | None = None) -> set[str]:
    """The bot names ``path`` (module ``here``) imports, absolutely or relatively, wherever the
    import stands (TYPE_CHECKING blocks and functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = here or module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # `from bot import history` imports the module bot.history (and `from bot.x import y`
            # may import a module y: module_graph tells the two apart).
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "bot" or name.startswith("bot.")}


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(BOT.rglob("*.py"))}


def module_graph() -> dict[str, set[str]]:
    """{module: {bot module it imports, ...}}: a name inside a module counts as that module
    (``from bot.x import y`` imports the module bot.x.y if there is one, and bot.x, whose
    ``__init__`` runs first, in any case)."""
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for here, path in modules.items():
        targets = set()
        for name in imported_modules(path, here):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != here:
                targets.add(name)
        graph[here] = targets
    return graph


def part_graph() -> dict[str, dict[str, set[str]]]:
    """{part: {imported part: {importing module, ...}}}, without a part's imports of itself."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for source, targets in module_graph().items():
        graph[part_of(source)]  # every part is a node, even one that imports nothing
        for target in targets:
            if target != "bot" and part_of(source) != part_of(target):
                graph[part_of(source)][part_of(target)].add(source)
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle (of parts or modules) as a path (first == last), or None."""
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


def two_way_pairs(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    return sorted({(a, b) for a in graph for b in graph[a] if a < b and a in graph.get(b, ())})


def layer_lines() -> list[str]:
    """The layers, top first: what the docs quote."""
    return [
        f"{len(LAYERS) - index:2}. {', '.join(sorted(layer))}" for index, layer in reversed(list(enumerate(LAYERS)))
    ]


def test_no_two_parts_import_each_other():
    graph = part_graph()
    pairs = [f"{a} ⇄ {b} ({', '.join(sorted(graph[a][b] | graph[b][a]))})" for a, b in two_way_pairs(graph)]
    assert not pairs, "parts that import each other:\n" + "\n".join(pairs)


def test_the_parts_of_bot_have_no_import_cycle():
    cycle = find_cycle(part_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_no_modules_import_each_other_even_through_others():
    graph = module_graph()
    assert not two_way_pairs(graph), two_way_pairs(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "module import cycle: " + " → ".join(cycle or [])


def test_the_layer_list_names_every_part():
    parts = set(part_graph())
    listed = set().union(*LAYERS)
    assert parts <= listed, f"parts in no layer: {sorted(parts - listed)}"
    print("\n".join(["layers of bot/, top first (each imports only from layers below):", *layer_lines()]))


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


def private_imports(path: Path) -> list[str]:
    """``from bot.x import _name`` in ``path``: a private name used outside its module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def test_nothing_private_is_imported_from_another_module():
    found = {module: names for module, path in all_modules().items() if (names := private_imports(path))}
    assert not found, f"private names imported from other modules (make them public or keep them home): {found}"


def test_the_checker_sees_a_cycle_and_an_upward_import():
    assert find_cycle({"a": {"b": {"a.x"}}, "b": {"c": {"b.y"}}, "c": {"a": {"c.z"}}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": {"a.x"}}, "b": {}}) is None
    assert two_way_pairs({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [("a", "b")]
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
    assert private_imports(sample) == []
    sample.write_text("from bot.conversation.window import _in_thread, thread_rows\n", encoding="utf-8")
    assert private_imports(sample) == ["bot.conversation.window._in_thread"]
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
        "bot.limits.window",
        "bot.runtime",
        "bot.runtime.build_worker",
        "bot.web",
        "bot.web.app",
    }


if __name__ == "__main__":
    print("\n".join(layer_lines()))
