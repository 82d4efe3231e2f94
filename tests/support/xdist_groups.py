"""pytest-xdist: the tests that share a fixture wider than one test run on one worker.

An e2e module starts a stack of real processes once (a module-scoped fixture, on SQLite and on
PostgreSQL): spread over two workers, its tests would start it twice. So the tests of one shared
fixture instance form a group, scheduled whole on one worker; every other test is scheduled on
its own. A parametrized shared fixture (`stack` on sqlite, on postgres) makes one group per
parameter, so a module's two stacks can run side by side.

xdist's own `--dist loadgroup` carries groups by rewriting node ids, which pytest 9.2 no longer
allows (pytest-dev/pytest-xdist#1386: the groups are silently dropped). Here each worker writes
the groups it collected to a file, and the controller's scheduler reads them: `--dist loadgroup`
selects it, and `xdist_group` marks still count.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

GROUPS_DIR = "bot_xdist_groups_dir"  # workerinput key: where the workers write their groups
SHARED_SCOPES = ("package", "module", "class")
_groups_dir_key = pytest.StashKey[Path]()


def shared_fixture_group(item: pytest.Item) -> str | None:
    """The group of a test: its `xdist_group` mark, else the shared fixtures it uses (with their
    parameters), else None (scheduled on its own)."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return None
    shared = sorted(
        name
        for name, definitions in fixture_info.name2fixturedefs.items()
        if definitions and definitions[-1].scope in SHARED_SCOPES
    )
    if not shared:
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    return "|".join([item.nodeid.split("::")[0], *(f"{name}={params[name]}" for name in shared if name in params)])


# --- on the controller ---------------------------------------------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    config = node.config
    if _groups_dir_key not in config.stash:
        config.stash[_groups_dir_key] = Path(tempfile.mkdtemp(prefix="bot-xdist-groups-"))
    node.workerinput[GROUPS_DIR] = str(config.stash[_groups_dir_key])


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    groups_dir = config.stash[_groups_dir_key]

    class SharedFixtureScheduling(LoadScopeScheduling):
        """xdist's scope scheduling, with a scope per group (or per test) as the workers wrote them."""

        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:  # every worker has collected (and written) when scheduling starts
                self._groups = {}
                for path in sorted(groups_dir.glob("*.json")):
                    self._groups.update(json.loads(path.read_text()))
            return self._groups.get(nodeid, nodeid)

    return SharedFixtureScheduling(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    groups_dir = config.stash.get(_groups_dir_key, None)
    if groups_dir is not None:
        shutil.rmtree(groups_dir, ignore_errors=True)


# --- on a worker ---------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or GROUPS_DIR not in workerinput:
        return
    groups = {item.nodeid: f"group:{group}" for item in items if (group := shared_fixture_group(item)) is not None}
    target = Path(workerinput[GROUPS_DIR]) / f"{workerinput['workerid']}.json"
    target.write_text(json.dumps(groups))
