"""A safe arithmetic evaluator over Python's `ast`. Pure; never uses `eval`.

Accepted: integer and decimal numbers, + - * / // % ** (and ^ as a synonym for **), unary
minus and plus, parentheses, the constants in CONSTANTS and the functions in FUNCTIONS.
Everything else (names, attributes, subscripts, comparisons, strings, shifts, ...) is refused.

Bounded by construction: every operation's cost is checked *before* it runs, from the size of
its result, so no expression can hold the interpreter (and with it the worker's lease renewals)
for long. Integers have at most MAX_INTEGER_BITS bits (MAX_DIGITS decimal digits): a power is
refused when its result would be larger, `round` with negative digits when the power of ten it
needs would be (`round(1, -10**8)` builds 10**(10**8) inside CPython), factorials go up to
MAX_FACTORIAL, and every operand is already within the bound, so +, -, *, /, //, % and turning a
result into text stay cheap. The person hears one sentence: "that number would have N digits".
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION_CHARS = 200
MAX_INTEGER_BITS = 4096  # about 1,233 decimal digits
MAX_DIGITS = int(MAX_INTEGER_BITS * math.log10(2))  # 1,233
MAX_FACTORIAL = 500

Number = int | float


class CalculationError(ValueError):
    """The expression cannot be evaluated; the message is a plain sentence."""


def too_many_digits(digits: int) -> CalculationError:
    return CalculationError(f"That number would have {digits:,} digits; I work with at most {MAX_DIGITS:,}.")


def _factorial(n: Number) -> int:
    if not isinstance(n, int) or not 0 <= n <= MAX_FACTORIAL:
        raise CalculationError(f"factorial takes a whole number from 0 to {MAX_FACTORIAL}.")
    return math.factorial(n)


def _round(x: Number, digits: Number = 0) -> Number:
    if not isinstance(digits, int):
        raise CalculationError("round takes a whole number of digits.")
    if isinstance(x, int) and digits < -MAX_DIGITS:
        # int.__round__ computes 10**-digits first: refuse before building it.
        raise too_many_digits(1 - digits)
    return round(x) if digits == 0 else round(x, digits)


CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}

# name: (function, fewest arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "cbrt": (math.cbrt, 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (math.log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "degrees": (math.degrees, 1, 1),
    "radians": (math.radians, 1, 1),
    "hypot": (math.hypot, 1, 8),
    "factorial": (_factorial, 1, 1),
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

_WHAT_IS_ALLOWED = (
    "Use numbers, + - * / // % ** (or ^), parentheses, the constants "
    + ", ".join(sorted(CONSTANTS))
    + " and the functions "
    + ", ".join(sorted(FUNCTIONS))
    + "."
)


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression, or CalculationError."""
    text = expression.strip()
    if not text:
        raise CalculationError("There is nothing to calculate.")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"The expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise CalculationError(f"{text!r} is not an expression I can read. {_WHAT_IS_ALLOWED}") from None
    try:
        return _evaluate(tree.body)
    except ZeroDivisionError:
        raise CalculationError("That divides by zero.") from None
    except OverflowError:
        raise CalculationError("The result is too large.") from None
    except RecursionError:
        raise CalculationError("The expression is nested too deeply.") from None


def format_number(value: Number) -> str:
    """A number as people write it: no float noise, whole floats without `.0`."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".15g")


def calculate(expression: str) -> str:
    """`expression = result` as a line of text, or CalculationError."""
    return f"{expression.strip()} = {format_number(evaluate(expression))}"


def _evaluate(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):
            return _checked(node.value)
        if isinstance(node.value, complex):
            raise CalculationError("Complex numbers are not supported.")
        raise CalculationError(f"Only numbers can be calculated. {_WHAT_IS_ALLOWED}")
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculationError(f"I don't know {node.id!r}. {_WHAT_IS_ALLOWED}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _evaluate(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        apply = _BINARY.get(type(node.op))
        if apply is None:
            raise CalculationError(f"That operator is not supported. {_WHAT_IS_ALLOWED}")
        return _checked(apply(left, right))
    if isinstance(node, ast.Call):
        return _checked(_call(node))
    raise CalculationError(f"That is not plain arithmetic. {_WHAT_IS_ALLOWED}")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        shown = node.func.id if isinstance(node.func, ast.Name) else "that function"
        raise CalculationError(f"I don't know {shown!r}. {_WHAT_IS_ALLOWED}")
    name = node.func.id
    function, fewest, most = FUNCTIONS[name]
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise CalculationError(f"{name} takes plain arguments.")
    if not fewest <= len(node.args) <= most:
        expected = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise CalculationError(f"{name} takes {expected} argument(s), got {len(node.args)}.")
    args = [_evaluate(arg) for arg in node.args]
    try:
        return function(*args)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CalculationError):
            raise
        shown = ", ".join(format_number(arg) for arg in args)
        raise CalculationError(f"{name}({shown}) has no real result.") from None


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        # Refuse before computing: the result has at least exponent * (bits - 1) bits.
        if exponent * (abs(base).bit_length() - 1) > MAX_INTEGER_BITS:
            raise too_many_digits(int(exponent * math.log10(abs(base))) + 1)
    result = base**exponent
    if isinstance(result, complex):
        raise CalculationError("That power has no real result.")
    return result


def _checked(value: Number) -> Number:
    if isinstance(value, int):
        if value.bit_length() > MAX_INTEGER_BITS:
            raise CalculationError("The result is too large.")
        return value
    if math.isnan(value):
        raise CalculationError("The result is not a number.")
    if math.isinf(value):
        raise CalculationError("The result is too large.")
    return value
