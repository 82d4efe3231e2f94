"""CI's guard on the suite itself: with BOT_REQUIRE_POSTGRES=1 a skipped PostgreSQL test fails the
run, also when pytest-xdist runs the tests on workers (the controller must see their skips)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://postgres@127.0.0.1:9/test"  # the discard port: nothing answers


def test_a_skipped_postgres_test_fails_the_run_when_postgres_is_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("TEST_DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("BOT_REQUIRE_POSTGRES", "1")
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]')
    pytester.makepyfile(
        textwrap.dedent(
            """
            def test_needs_postgres(postgres_url):
                pass

            def test_plain():
                pass
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1")

    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*1 PostgreSQL tests were skipped but BOT_REQUIRE_POSTGRES=1*"])

    monkeypatch.delenv("BOT_REQUIRE_POSTGRES")
    relaxed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1")
    relaxed.assert_outcomes(passed=1, skipped=1)
    assert relaxed.ret == 0


def test_the_ci_scripts_exit_trap_keeps_a_green_run_green_and_a_red_one_red():
    # Under `set -e`, a trap command that fails (kill with no job left) turned a passing run
    # into exit status 2: CI went red with every test passed.
    import re
    import subprocess
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    [trap] = re.findall(r"^\s*(trap .* EXIT)$", script, flags=re.MULTILINE)
    for last, status in (("true", 0), ("false", 1)):
        run = subprocess.run(
            ["bash", "-c", f'set -euo pipefail; oldest_dir="$(mktemp -d)"; {trap}; {last}'], timeout=30
        )
        assert run.returncode == status
