import pytest

from bot.config import ConfigError, Settings, load_settings, missing_for, normalize_database_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@host:5432/db", "postgresql+psycopg://u:p@host:5432/db"),
        ("postgresql://u@host/db", "postgresql+psycopg://u@host/db"),
        ("postgresql+psycopg://u@host/db", "postgresql+psycopg://u@host/db"),
        ("sqlite:///bot.sqlite3", "sqlite:///bot.sqlite3"),
        ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
    ],
)
def test_database_urls_are_normalized(raw, expected):
    assert normalize_database_url(raw) == expected


@pytest.mark.parametrize("raw", ["nonsense", "mysql://u@h/db", "postgres://", "postgres:///db"])
def test_malformed_database_urls_are_refused(raw):
    with pytest.raises(ValueError):
        normalize_database_url(raw)


def test_defaults_need_nothing():
    settings = load_settings({})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.inference_model_id == "claude-4-5-haiku"
    assert (settings.inference_max_requests_per_minute, settings.inference_max_tokens_per_minute) == (200, 800_000)
    assert settings.inference_rate_window_seconds == 60
    assert settings.slack_api_url == "https://slack.com/api/"


def test_every_problem_is_reported_at_once_in_plain_sentences():
    with pytest.raises(ConfigError) as error:
        load_settings(
            {
                "DATABASE_URL": "nonsense",
                "INFERENCE_MAX_REQUESTS_PER_MINUTE": "many",
                "SLACK_BOT_TOKEN": "xoxp-user-token",
                "INFERENCE_URL": "not a url",
            }
        )
    problems = error.value.problems
    assert len(problems) == 4
    assert any(p.startswith("DATABASE_URL is malformed") for p in problems)
    assert any("INFERENCE_MAX_REQUESTS_PER_MINUTE must be a number" in p for p in problems)
    assert any("xoxb-" in p for p in problems)
    assert all(p.endswith(".") and "\n" not in p for p in problems)


def test_the_window_can_be_shrunk_without_rescaling_the_limits():
    settings = load_settings({"INFERENCE_RATE_WINDOW_SECONDS": "6", "INFERENCE_MAX_REQUESTS_PER_MINUTE": "50"})
    assert settings.inference_rate_window_seconds == 6.0
    assert settings.inference_max_requests_per_minute == 50


def test_missing_inference_tells_how_to_get_it():
    problems = missing_for(Settings(), "inference")
    assert len(problems) == 2
    assert all("heroku ai:models:create -a APP claude-4-5-haiku --as INFERENCE" in p for p in problems)


def test_slack_needs_a_signing_secret_and_a_token_or_oauth():
    assert len(missing_for(Settings(), "slack")) == 2
    assert missing_for(Settings(slack_signing_secret="s", slack_bot_token="xoxb-1"), "slack") == []
    oauth = Settings(slack_signing_secret="s", slack_client_id="1", slack_client_secret="2")
    assert missing_for(oauth, "slack") == []


def test_moderation_channels_are_a_list():
    settings = load_settings({"MODERATION_CHANNELS": "C1, C2,,C3 "})
    assert settings.moderation_channels == ("C1", "C2", "C3")


def test_slack_api_url_gets_a_trailing_slash():
    assert load_settings({"SLACK_API_URL": "http://127.0.0.1:9/api"}).slack_api_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # The shipped defaults fit: Haiku's cap is 4096, the budget below it.
        ({}, []),
        ({"INFERENCE_MAX_OUTPUT_TOKENS": "4096", "INFERENCE_THINKING_BUDGET_TOKENS": "4095"}, []),
        ({"INFERENCE_MODEL_ID": "claude-4-5-sonnet", "INFERENCE_MAX_OUTPUT_TOKENS": "8192"}, []),
        ({"INFERENCE_MAX_OUTPUT_TOKENS": "8192"}, ["INFERENCE_MAX_OUTPUT_TOKENS is 8192, above the 4096"]),
        (
            {"INFERENCE_MAX_OUTPUT_TOKENS": "4096", "INFERENCE_THINKING_BUDGET_TOKENS": "4096"},
            ["INFERENCE_THINKING_BUDGET_TOKENS is 4096, not below INFERENCE_MAX_OUTPUT_TOKENS (4096)"],
        ),
        (
            {"INFERENCE_MAX_OUTPUT_TOKENS": "9000", "INFERENCE_THINKING_BUDGET_TOKENS": "9000"},
            ["INFERENCE_MAX_OUTPUT_TOKENS is 9000", "INFERENCE_THINKING_BUDGET_TOKENS is 9000"],
        ),
        ({"INFERENCE_THINKING_BUDGET_TOKENS": "1000"}, ["INFERENCE_THINKING_BUDGET_TOKENS must be at least 1024"]),
        ({"INFERENCE_MAX_OUTPUT_TOKENS": "1024"}, ["INFERENCE_THINKING_BUDGET_TOKENS is 2048, not below"]),
    ],
)
def test_output_limits_are_checked_against_the_model_and_each_other(env, expected):
    if not expected:
        settings = load_settings(env)
        assert settings.thinking_budget_tokens < settings.inference_max_output_tokens
        return
    with pytest.raises(ConfigError) as error:
        load_settings(env)
    problems = error.value.problems
    assert len(problems) == len(expected)  # one line per problem
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start) and problem.endswith(".")


def test_a_retention_that_could_purge_pending_approvals_is_refused():
    with pytest.raises(ConfigError) as info:
        load_settings({"RETENTION_DAYS": "1", "BOT_APPROVAL_TIMEOUT_SECONDS": "86400"})
    assert "pending approvals would be purged" in str(info.value)
    assert load_settings({"RETENTION_DAYS": "2", "BOT_APPROVAL_TIMEOUT_SECONDS": "86400"}).retention_days == 2
    assert load_settings({"RETENTION_DAYS": "0"}).retention_days == 0  # 0 keeps everything


def test_the_per_user_queue_cap_defaults_to_20():
    assert load_settings({}).max_queued_per_user == 20
    assert load_settings({"BOT_MAX_QUEUED_PER_USER": "5"}).max_queued_per_user == 5
