"""The tools error tree.

    ToolError                    root; its message is a plain sentence safe to show a user or the model
    ├── ToolDefinitionError      a tool is declared wrongly (raised at registration, a programming error)
    ├── ArgumentError            the arguments do not fit the tool; carries the usage line when known
    ├── PermissionDenied         the person who triggered the work may not use this tool
    └── ToolFailed               the tool ran and has an expected failure to report ("no such city")

Anything else a tool raises is unexpected: the runner logs it and reports only its type.
"""

from __future__ import annotations


class ToolError(Exception):
    """Root of the tools errors; `str(error)` is a plain sentence."""


class ToolDefinitionError(ToolError):
    """A tool function or its registration options are malformed."""


class ArgumentError(ToolError):
    """Bad arguments. `usage` is the slash-command usage line (empty for model calls)."""

    def __init__(self, message: str, usage: str = ""):
        super().__init__(message)
        self.message = message
        self.usage = usage

    def __str__(self) -> str:
        if self.usage:
            return f"{self.message}\nUsage: {self.usage}"
        return self.message


class PermissionDenied(ToolError):
    """The human who triggered the call may not use the tool."""


class ToolFailed(ToolError):
    """Raised by a tool for a failure whose message should reach the user as is."""
