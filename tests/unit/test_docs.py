"""The front door and its rooms: README.md stays short, every link in it and in docs/ lands on a page
and heading that exist, the Deploy button deploys this app.json, app.json is a Heroku Button manifest
for this app, and the configuration page lists every variable the settings read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.config import Settings
from bot.db.connections import connection_budget

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_BYTES = 12 * 1024
# https://devcenter.heroku.com/articles/heroku-button: the button image and the deploy URL with `template=`.
BUTTON = re.compile(
    r"\[!\[Deploy to Heroku\]\(https://www\.herokucdn\.com/deploy/button\.svg\)\]"
    r"\(https://www\.heroku\.com/deploy\?template=(?P<repository>[^)\s]+)\)"
)
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}


def _app_json() -> dict:
    return json.loads((ROOT / "app.json").read_text())


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces become hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    headings = []
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            headings.append(line.lstrip("#"))
    return {_slug(heading) for heading in headings}


def test_readme_is_a_front_door_of_at_most_12_kb():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes: move reference material into docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_lands_on_a_page_and_heading_that_exist(page):
    broken = []
    for match in LINK.finditer(page.read_text()):
        target = match["target"]
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    assert not broken, f"{page.name}: {broken}"


def test_the_readme_links_every_docs_page():
    readme = README.read_text()
    unlinked = [page.name for page in DOCS if f"docs/{page.name}" not in readme]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_the_deploy_button_deploys_the_repository_app_json_names():
    match = BUTTON.search(README.read_text())
    assert match, "README.md has no Deploy to Heroku button"
    assert match["repository"] == _app_json()["repository"]


def test_app_json_provisions_the_database_and_the_default_model():
    addons = {addon["plan"].split(":")[0]: addon for addon in _app_json()["addons"]}
    assert set(addons) == {"heroku-postgresql", "heroku-inference"}
    inference = addons["heroku-inference"]
    # The add-on attached as INFERENCE sets INFERENCE_URL, INFERENCE_KEY and INFERENCE_MODEL_ID.
    assert inference["as"] == "INFERENCE"
    assert inference["plan"] == f"heroku-inference:{Settings().inference_model_id}"


def test_app_json_runs_the_procfiles_processes_and_migrates():
    manifest = _app_json()
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert set(manifest["formation"]) == set(procfile) - {"release"}
    assert all(process["quantity"] >= 1 for process in manifest["formation"].values())
    assert manifest["scripts"]["postdeploy"] == procfile["release"].strip() == "bot migrate"
    assert manifest["buildpacks"] == [{"url": "heroku/python"}]


def test_app_json_variables_are_described_and_documented():
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    for name, variable in _app_json()["env"].items():
        assert isinstance(variable["description"], str) and variable["description"], name
        assert isinstance(variable["required"], bool), name
        assert f"`{name}`" in configuration, f"{name} is in app.json but not in docs/configuration.md"


def test_app_json_defaults_fit_the_database_plan_it_provisions():
    env = _app_json()["env"]
    budget = connection_budget(
        web_concurrency=Settings().web_concurrency,
        worker_concurrency=int(env["WORKER_CONCURRENCY"]["value"]),
        limit=int(env["DATABASE_CONNECTION_LIMIT"]["value"]),
    )
    assert budget.fits, budget.describe()


def test_the_configuration_page_lists_every_variable_the_settings_read():
    source = (ROOT / "bot" / "config.py").read_text()
    variables = {name for name in re.findall(r'"([A-Z][A-Z0-9_]{3,})"', source) if name not in LOG_LEVELS}
    assert "DATABASE_URL" in variables  # the pattern finds the variables at all
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in variables if f"`{name}`" not in configuration)
    assert not missing, f"add a row to docs/configuration.md for: {missing}"
