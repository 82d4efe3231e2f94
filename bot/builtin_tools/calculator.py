"""`calculate` (`/calc`): exact arithmetic, so the model does not have to guess."""

from __future__ import annotations

from bot.tools.calculator_logic import CalculationError, calculate
from bot.tools.errors import ToolFailed
from bot.tools.registry import ToolContext, ToolRegistry


def calculate_expression(ctx: ToolContext, expression: str) -> str:
    """Evaluate an arithmetic expression exactly; answers "expression = result". Supports
    + - * / // % ** (or ^), parentheses, pi, e, tau and the functions sqrt, cbrt, exp, log,
    log10, log2, sin, cos, tan, asin, acos, atan, degrees, radians, hypot, abs, round, floor,
    ceil and factorial (angles in radians).

    Args:
        expression: The expression, e.g. "(17.5 * 3) / 4" or "sqrt(2) * pi".
    """
    try:
        return calculate(expression)
    except CalculationError as exc:
        raise ToolFailed(str(exc)) from None


def register(registry: ToolRegistry) -> None:
    registry.add(calculate_expression, name="calculate", command="calc", usage="/calc <expression>", timeout=5.0)
