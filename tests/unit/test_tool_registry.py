import pytest

from bot.builtin_tools import default_registry
from bot.tools.errors import PermissionDenied, ToolDefinitionError
from bot.tools.registry import Permission, SlashCommandSpec, ToolContext, ToolRegistry, first_sentence


def echo(ctx: ToolContext, text: str) -> str:
    """Echo text back.

    Args:
        text: What to echo.
    """
    return text


def forget(ctx: ToolContext) -> str:
    """Forget this thread."""
    return "forgotten"


def report(ctx: ToolContext, days: int = 7) -> str:
    """Usage report."""
    return str(days)


def test_decorator_registers_and_returns_the_function_unchanged():
    registry = ToolRegistry()
    decorated = registry.tool(command="/Echo".lower(), permission=Permission.EVERYONE)(echo)
    assert decorated is echo
    tool = registry.get("echo")
    assert tool is not None and tool.func is echo
    assert tool.command == "echo" and tool.usage == "/echo <text>" and tool.label == "/echo"
    assert registry.for_command("/echo") is tool and registry.for_command("ECHO") is tool
    assert "echo" in registry and len(registry) == 1
    assert (tool.timeout, tool.max_result_chars) == (10.0, 4000)


def test_registry_defaults_apply_unless_overridden():
    registry = ToolRegistry(default_timeout=3.0, default_max_result_chars=500)
    registry.add(echo)
    registry.add(report, timeout=1.5, max_result_chars=200)
    assert (registry.get("echo").timeout, registry.get("echo").max_result_chars) == (3.0, 500)
    assert (registry.get("report").timeout, registry.get("report").max_result_chars) == (1.5, 200)
    assert registry.get("echo").label == "echo"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"command": "Echo"}, "must be lowercase"),
        ({"command": "two words"}, "must be lowercase"),
        ({"command": "x" * 33}, "must be lowercase"),
        ({"permission": Permission()}, "allows nobody"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"max_result_chars": 10}, "max_result_chars at least 100"),
    ],
)
def test_bad_registration_options(options, fragment):
    with pytest.raises(ToolDefinitionError) as info:
        ToolRegistry().add(echo, **options)
    assert fragment in str(info.value)


def test_names_and_commands_are_unique():
    registry = ToolRegistry()
    registry.add(echo, command="echo")
    with pytest.raises(ToolDefinitionError, match="named echo"):
        registry.add(echo)
    with pytest.raises(ToolDefinitionError, match="/echo"):
        registry.add(report, command="echo")
    assert registry.names() == ["echo"]


def test_include_is_all_or_nothing():
    registry = ToolRegistry()
    registry.add(echo, command="echo")
    other = registry.empty_like()
    other.add(report, command="report")
    other.add(forget, command="echo")
    with pytest.raises(ToolDefinitionError):
        registry.include(other)
    assert registry.names() == ["echo"]
    fine = registry.empty_like()
    fine.add(report, command="report")
    registry.include(fine)
    assert registry.names() == ["echo", "report"]


def test_iteration_and_openai_tools_are_sorted_by_name():
    registry = ToolRegistry()
    for func in (report, echo, forget):
        registry.add(func)
    assert registry.names() == ["echo", "forget", "report"]
    assert [t["function"]["name"] for t in registry.openai_tools()] == ["echo", "forget", "report"]


def test_openai_tools_cannot_be_corrupted_by_a_caller():
    registry = ToolRegistry()
    registry.add(echo)
    registry.openai_tools()[0]["function"]["parameters"]["properties"]["text"]["type"] = "integer"
    assert registry.openai_tools()[0]["function"]["parameters"]["properties"]["text"]["type"] == "string"


def test_slash_commands_for_the_manifest():
    registry = ToolRegistry()
    registry.add(echo, command="echo")
    registry.add(report, command="usage", usage="/usage [days=<n>]")
    registry.add(forget)  # model-only: no command
    assert registry.slash_commands() == [
        SlashCommandSpec("/echo", "Echo text back.", "<text>"),
        SlashCommandSpec("/usage", "Usage report.", "[days=<n>]"),
    ]
    command, description, usage_hint = registry.slash_commands()[0]
    assert (command, description, usage_hint) == ("/echo", "Echo text back.", "<text>")


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("Echo text back.", "Echo text back."),
        ("Echo text back", "Echo text back."),
        ("Add numbers. Supports e.g. floats.", "Add numbers."),
        ("a" * 150, "a" * 99 + "…"),
    ],
)
def test_first_sentence(text, short):
    assert first_sentence(text) == short
    assert len(first_sentence(text)) <= 100


def test_default_registry_commands():
    assert [spec.command for spec in default_registry().slash_commands()] == [
        "/calc",
        "/forget",
        "/moderation",
        "/search",
        "/time",
        "/usage",
        "/weather",
    ]


ANYONE = ToolContext(user_id="U9")
ADMIN = ToolContext(user_id="U8", user_is_admin=True)
LISTED = ToolContext(user_id="U1")


@pytest.mark.parametrize(
    ("permission", "ctx", "allowed"),
    [
        (Permission.EVERYONE, ANYONE, True),
        (Permission.EVERYONE, ToolContext(), True),
        (Permission.ADMINS, ADMIN, True),
        (Permission.ADMINS, ANYONE, False),
        (Permission.ADMINS, ToolContext(user_id="U8"), False),
        (Permission.users({"U1"}), LISTED, True),
        (Permission.users({"U1"}), ADMIN, False),
        (Permission.users({"U1"}), ToolContext(), False),
        (Permission.ADMINS | Permission.users({"U1"}), LISTED, True),
        (Permission.ADMINS | Permission.users({"U1"}), ADMIN, True),
        (Permission.ADMINS | Permission.users({"U1"}), ANYONE, False),
        (Permission.users({"U1"}) | Permission.users({"U9"}), ANYONE, True),
    ],
)
def test_check_permission(permission, ctx, allowed):
    registry = ToolRegistry()
    tool = registry.add(forget, command="forget", permission=permission)
    if allowed:
        registry.check_permission(tool, ctx)
    else:
        with pytest.raises(PermissionDenied):
            registry.check_permission(tool, ctx)


@pytest.mark.parametrize(
    ("permission", "sentence"),
    [
        (Permission.ADMINS, "Only workspace admins can use /forget."),
        (Permission.users({"U1"}), "Only people given access can use /forget; ask a workspace admin."),
        (
            Permission.ADMINS | Permission.users({"U1"}),
            "Only workspace admins and people given access can use /forget.",
        ),
    ],
)
def test_refusal_is_a_plain_sentence(permission, sentence):
    registry = ToolRegistry()
    tool = registry.add(forget, command="forget", permission=permission)
    with pytest.raises(PermissionDenied) as info:
        registry.check_permission(tool, ANYONE)
    assert str(info.value) == sentence
