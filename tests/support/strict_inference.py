"""The suite's check that no request was refused by the strict fake inference server.

Every :class:`tests.fakes.inference.FakeInference` in this process appends each request it
refuses for validity (400, 413) to ``tests.fakes.inference.REJECTIONS``. After each test this
plugin looks at what was added during it: the test fails (at teardown) unless it declares
that it sends invalid requests on purpose with ``@pytest.mark.invalid_inference_requests``.
Refusals outside any test (module fixtures, stacks draining between tests) are caught at the
end of the session, which then fails too.
"""

from __future__ import annotations

import pytest

from tests.fakes import inference

MARKER = "invalid_inference_requests"

_accounted = 0  # rejections already declared by a test or reported as a failure


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: the test sends requests the strict fake inference server refuses, on purpose"
    )


def describe(rejections: list[inference.Rejection]) -> str:
    return "; ".join(f"HTTP {r.status}: {r.message}" for r in rejections[:5])


@pytest.fixture(autouse=True)
def _no_invalid_inference_requests(request: pytest.FixtureRequest):
    global _accounted
    before = len(inference.REJECTIONS)
    yield
    new = inference.REJECTIONS[before:]
    _accounted += len(new)
    if new and request.node.get_closest_marker(MARKER) is None:
        pytest.fail(
            f"the strict fake inference server refused {len(new)} request(s) during this test "
            f"(mark it @pytest.mark.{MARKER} if that is the point): {describe(new)}",
            pytrace=False,
        )


_stray_on_workers: list[str] = []  # on the pytest-xdist controller: what its workers reported


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stray = [describe([rejection]) for rejection in inference.REJECTIONS[_accounted:]]
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: its exit status is not the run's, so tell the controller
        workeroutput["stray_inference_rejections"] = stray
        return
    stray += _stray_on_workers
    if stray:
        session.config._stray_inference_rejections = stray
        session.exitstatus = 1


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """pytest-xdist: a worker finished; keep the refusals it saw outside any test."""
    _stray_on_workers.extend(getattr(node, "workeroutput", {}).get("stray_inference_rejections", []))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    stray = getattr(config, "_stray_inference_rejections", None)
    if stray:
        terminalreporter.write_line(
            f"FAILED: the strict fake inference server refused {len(stray)} request(s) outside any test: "
            f"{'; '.join(stray[:5])}",
            red=True,
        )
