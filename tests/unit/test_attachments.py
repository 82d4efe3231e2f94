"""Attachments found in the environment, their published limits, and routes (bot.attachments, bot.config)."""

from __future__ import annotations

import pytest

from bot.attachments import aliases_in, discover, published_limits
from bot.config import ConfigError, load_settings

BASE = {"INFERENCE_URL": "https://us.inference.heroku.com", "INFERENCE_KEY": "k1"}


@pytest.mark.parametrize(
    ("model", "limits"),
    [
        ("claude-4-5-haiku", (200, 800_000)),
        ("claude-4-5-sonnet", (150, 800_000)),
        ("claude-3-5-haiku", (200, 800_000)),
        ("claude-3-haiku", (250, 800_000)),
        ("some-future-model", (150, 800_000)),  # unlisted: the smallest published limits
    ],
)
def test_published_limits(model, limits):
    assert published_limits(model) == limits


def test_every_alias_starting_with_inference_is_found_main_first():
    env = {
        "INFERENCE_3_URL": "https://c",
        "INFERENCE_URL": "https://a",
        "INFERENCE_2_URL": "https://b",
        "INFERENCE_SONNET_URL": "https://d",
        "OTHER_URL": "https://e",
        "INFERENCE_MAX_REQUESTS_PER_MINUTE": "5",
        "INFERENCE_4_URL": "  ",
    }
    assert aliases_in(env) == ["INFERENCE", "INFERENCE_2", "INFERENCE_3", "INFERENCE_SONNET"]


def test_discovery_reads_each_alias_with_its_model_defaults_and_overrides():
    env = {
        **BASE,
        "INFERENCE_2_URL": "https://eu.inference.heroku.com/",
        "INFERENCE_2_KEY": "k2",
        "INFERENCE_2_MODEL_ID": "claude-4-5-sonnet",
        "INFERENCE_3_URL": "https://us.inference.heroku.com",
        "INFERENCE_3_KEY": "k3",
        "INFERENCE_3_MAX_REQUESTS_PER_MINUTE": "40",
        "INFERENCE_3_RATE_WINDOW_SECONDS": "6",
    }
    attachments, problems = discover(env)
    assert problems == []
    second, third = attachments
    assert (second.alias, second.url, second.model_id, second.max_requests, second.max_tokens) == (
        "INFERENCE_2",
        "https://eu.inference.heroku.com",
        "claude-4-5-sonnet",
        150,
        800_000,
    )
    assert (third.model_id, third.max_requests, third.window_seconds) == ("claude-4-5-haiku", 40, 6.0)
    assert "k2" not in repr(second)  # keys stay out of logs and tracebacks


def test_settings_list_attachments_and_models_with_routes():
    settings = load_settings(
        {
            **BASE,
            "INFERENCE_2_URL": "https://b",
            "INFERENCE_2_KEY": "k2",
            "INFERENCE_2_MODEL_ID": "claude-4-5-sonnet",
            "INFERENCE_3_URL": "https://c",
            "INFERENCE_3_KEY": "k3",
            "BOT_MODERATION_MODEL": "claude-4-5-haiku",
            "BOT_THINKING_MODEL": "claude-4-5-sonnet",
        }
    )
    assert [a.alias for a in settings.attachments] == ["INFERENCE", "INFERENCE_2", "INFERENCE_3"]
    assert settings.attached_models == ("claude-4-5-haiku", "claude-4-5-sonnet")
    assert settings.model_for("moderation") == "claude-4-5-haiku"
    assert settings.model_for("thinking") == "claude-4-5-sonnet"
    assert settings.model_for("summary") == "claude-4-5-haiku"  # no route: the INFERENCE model
    assert settings.model_for("answer") == "claude-4-5-haiku"


def test_the_main_attachment_defaults_to_its_models_published_limits():
    settings = load_settings({**BASE, "INFERENCE_MODEL_ID": "claude-4-5-sonnet"})
    assert (settings.inference_max_requests_per_minute, settings.inference_max_tokens_per_minute) == (150, 800_000)
    settings = load_settings({**BASE, "INFERENCE_MAX_REQUESTS_PER_MINUTE": "40"})
    assert settings.inference_max_requests_per_minute == 40


def test_a_route_to_a_model_without_attachment_is_one_sentence_at_start_up():
    with pytest.raises(ConfigError) as error:
        load_settings({**BASE, "BOT_SUMMARY_MODEL": "claude-4-5-sonnet"})
    [problem] = error.value.problems
    assert problem.startswith("BOT_SUMMARY_MODEL is 'claude-4-5-sonnet', but no attached model serves it")
    assert problem.count(". ") == 0 and problem.endswith(".")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"INFERENCE_2_URL": "https://b"}, "INFERENCE_2_URL is set but INFERENCE_2_KEY is not"),
        ({"INFERENCE_2_URL": "ftp://b", "INFERENCE_2_KEY": "k"}, "INFERENCE_2_URL must be an http(s) URL"),
        (
            {"INFERENCE_2_URL": "https://b", "INFERENCE_2_KEY": "k", "INFERENCE_2_MAX_TOKENS_PER_MINUTE": "lots"},
            "INFERENCE_2_MAX_TOKENS_PER_MINUTE must be a number",
        ),
    ],
)
def test_bad_attachments_are_named(env, expected):
    with pytest.raises(ConfigError) as error:
        load_settings({**BASE, **env})
    assert any(p.startswith(expected) for p in error.value.problems)
