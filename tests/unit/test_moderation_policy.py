import json

import pytest

from bot.config import ConfigError, load_settings
from bot.moderation.policy import (
    DEFAULT_POLICY,
    VERDICT_FUNCTION,
    Category,
    PolicyError,
    category_names,
    moderation_request,
    parse_policy,
    system_prompt,
)

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_policy_means_the_default_list(text):
    assert parse_policy(text) == DEFAULT_POLICY


def test_the_default_list_covers_the_issue():
    names = " ".join(category_names(DEFAULT_POLICY))
    for word in ("sexual", "violence", "hate", "self-harm", "personal data", "scam"):
        assert word in names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nudity", (Category("nudity"),)),
        (
            "nudity: any nudity;  weapons :guns  or knives ; ",
            (Category("nudity", "any nudity"), Category("weapons", "guns or knives")),
        ),
        ("a: b: c", (Category("a", "b: c"),)),  # only the first colon separates
    ],
)
def test_policies_from_configuration(text, expected):
    assert parse_policy(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (";;", "lists no category"),
        (": description only", "without a name"),
        ("x" * 61, "at most 60"),
        ("Nudity; nudity", "twice"),
        (";".join(f"c{n}" for n in range(31)), "at most 30"),
    ],
)
def test_bad_policies_are_refused_with_a_sentence(text, problem):
    with pytest.raises(PolicyError, match=problem):
        parse_policy(text)


def test_the_request_forces_the_verdict_function_with_the_policy_as_enum():
    policy = parse_policy("nudity: any; weapons")
    body = moderation_request(policy, IMAGE)
    # Heroku documents none/auto/required only: "required" with the one tool forces it.
    assert (body["tool_choice"], body["temperature"]) == ("required", 0)
    [tool] = body["tools"]
    parameters = tool["function"]["parameters"]
    assert tool["function"]["name"] == VERDICT_FUNCTION
    assert parameters["properties"]["verdict"]["enum"] == ["allow", "flag", "remove"]
    assert parameters["properties"]["categories"]["items"]["enum"] == ["nudity", "weapons"]
    assert set(parameters["required"]) == {"verdict", "categories", "confidence", "reason"}
    assert body["messages"][1]["content"][-1] == IMAGE
    assert "nudity: any" in body["messages"][0]["content"]


def test_the_prompt_and_tool_are_the_same_bytes_for_every_image():
    other = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    first, second = moderation_request(DEFAULT_POLICY, IMAGE), moderation_request(DEFAULT_POLICY, other)
    assert json.dumps(first["tools"]) == json.dumps(second["tools"])
    assert first["messages"][0] == second["messages"][0]
    assert system_prompt(DEFAULT_POLICY) == first["messages"][0]["content"]


def test_settings_read_the_moderation_variables():
    settings = load_settings(
        {
            "MODERATION_CHANNELS": "C1, C2",
            "MODERATION_REPORT_CHANNEL": "CREP",
            "MODERATION_POLICY": "nudity; scams: fake offers",
            "MODERATION_ALLOW_REACTION": ":white_check_mark:",
        }
    )
    assert settings.moderation_channels == ("C1", "C2")
    assert settings.moderation_report_channel == "CREP"
    assert parse_policy(settings.moderation_policy) == (Category("nudity"), Category("scams", "fake offers"))
    assert settings.moderation_allow_reaction == "white_check_mark"
    defaults = load_settings({})
    assert defaults.moderation_policy is None and defaults.moderation_allow_reaction is None


def test_a_bad_policy_stops_the_process_with_one_sentence():
    with pytest.raises(ConfigError) as caught:
        load_settings({"MODERATION_POLICY": "a; A"})
    assert caught.value.problems == ["MODERATION_POLICY names the category 'A' twice."]
