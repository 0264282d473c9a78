"""WHERE clauses as routing conditions: exact where possible, an honest superset otherwise."""

from __future__ import annotations

from bridge.plan.rules.ast import (
    Binary,
    Call,
    Case,
    Cast,
    Expr,
    Field,
    Literal,
    NestedSelect,
    Unary,
)
from bridge.plan.rules.functions import NO_EQUIVALENT, translate_call
from bridge.plan.rules.models import Finding, FindingCode
from bridge.plan.rules.routing import (
    FALSE,
    IDENTIFIER,
    TRUE,
    Arith,
    Body,
    Compare,
    Const,
    Func,
    Prop,
    RouteExpr,
    all_of,
    any_of,
    negate,
)

__all__ = ["WhereTranslator", "construct_findings", "unsupported_function"]

_COMPARISONS = frozenset({"=", "<>", "!=", "<", "<=", ">", ">="})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
_NUMERIC_FUNCTIONS = frozenset(
    {"ABS", "CEILING", "FLOOR", "SQRT", "POWER", "EXP", "SIGN", "SQUARE"}
)


class WhereTranslator:
    """Translate one WHERE clause, collecting findings; `relaxed` says the result is a superset."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.relaxed = False

    def translate(self, where: Expr) -> RouteExpr:
        """The routing condition for a WHERE clause; a superset of it when `relaxed` is set."""
        condition = self.condition(where, positive=True)
        if self.relaxed:
            self.note(
                FindingCode.SUPERSET_CONDITION,
                "parts of the WHERE clause have no routing equivalent and were dropped, so the "
                "route is a superset: it also sends messages the AWS rule would skip",
                "filter the rest in the consumer (Stream Analytics or a Function)",
            )
        return condition

    def note(self, code: FindingCode, message: str, suggestion: str) -> None:
        """Record a finding once."""
        finding = Finding(code=code, message=message, suggestion=suggestion)
        if finding not in self.findings:
            self.findings.append(finding)

    def condition(self, expr: Expr, *, positive: bool) -> RouteExpr:
        """A boolean sub-condition; `positive` is False under an odd number of NOTs."""
        if isinstance(expr, Binary) and expr.op in {"AND", "OR"}:
            left = self.condition(expr.left, positive=positive)
            right = self.condition(expr.right, positive=positive)
            return all_of(left, right) if expr.op == "AND" else any_of(left, right)
        if isinstance(expr, Unary) and expr.op == "NOT":
            return negate(self.condition(expr.operand, positive=not positive))
        if isinstance(expr, Binary) and expr.op == "IN":
            self.note(
                FindingCode.IN_OPERATOR,
                "IN (array membership) has no routing equivalent",
                "spell out literal alternatives with OR, or filter in the consumer",
            )
            return self.relax(positive=positive)
        if isinstance(expr, Field):
            # A bare field in WHERE is a boolean test of that field.
            translated = self.value(expr)
            condition: RouteExpr | None = (
                None if translated is None else Compare("=", translated, TRUE)
            )
        else:
            condition = self.value(expr)
        return self.relax(positive=positive) if condition is None else condition

    def relax(self, *, positive: bool) -> RouteExpr:
        """Stand-in for an untranslatable part that keeps the whole condition a superset."""
        self.relaxed = True
        # Under NOT, 'false' is what makes the enclosing condition true.
        return TRUE if positive else FALSE

    def value(self, expr: Expr) -> RouteExpr | None:
        """A value expression, or None (with a finding) when it cannot be expressed."""
        if isinstance(expr, Literal):
            return self.literal(expr)
        if isinstance(expr, Field):
            return self.field(expr)
        if isinstance(expr, Call):
            return self.call(expr)
        if isinstance(expr, Binary) and expr.op in _COMPARISONS:
            return self.comparison(expr)
        if isinstance(expr, Binary) and expr.op in _ARITHMETIC:
            left, right = self.value(expr.left), self.value(expr.right)
            return None if left is None or right is None else Arith(expr.op, left, right)
        if isinstance(expr, Unary) and expr.op == "-":
            operand = self.value(expr.operand)
            return None if operand is None else Arith("-", Const(0), operand)
        for code, message, suggestion in construct_findings(expr):
            self.note(code, message, suggestion)
        return None

    def literal(self, expr: Literal) -> RouteExpr | None:
        if isinstance(expr.value, str) and ("'" in expr.value or "\\" in expr.value):
            self.note(
                FindingCode.UNSUPPORTED_LITERAL,
                f"the string {expr.value!r} contains a quote or backslash, which routing "
                "queries cannot carry reliably",
                "filter on this value in the consumer",
            )
            return None
        return Const(expr.value)

    def field(self, expr: Field) -> RouteExpr | None:
        if any(isinstance(step, int) for step in expr.path):
            self.note(
                FindingCode.ARRAY_INDEX,
                f"array indexing ({_dotted(expr)}) has no routing equivalent",
                "filter on array elements in the consumer",
            )
            return None
        bad = [step for step in expr.path if isinstance(step, str) and not IDENTIFIER.match(step)]
        if bad:
            self.note(
                FindingCode.UNSUPPORTED_NAME,
                f"field name {bad[0]!r} is not a plain identifier, which routing queries need",
                "rename the payload field or filter in the consumer",
            )
            return None
        return Body(tuple(str(step) for step in expr.path))

    def call(self, expr: Call) -> RouteExpr | None:
        args = [self.value(arg) for arg in expr.args]
        if any(arg is None for arg in args):
            return None
        translated = translate_call(expr.name, tuple(arg for arg in args if arg is not None))
        if translated is None:
            self.note(*unsupported_function(expr.name))
        elif expr.name.lower() == "clientid":
            self.note(
                FindingCode.CLIENT_ID_ASSUMED,
                "clientid() is translated to $connectionDeviceId, assuming every device "
                "connects to AWS with its thing name as MQTT client id (the relay sends as "
                "that device's module, and devices connect to IoT Hub with that id)",
                "check the fleet's client ids; a device using another id does not match",
            )
        return translated

    def comparison(self, expr: Binary) -> RouteExpr | None:
        left, right = self.value(expr.left), self.value(expr.right)
        if left is None or right is None:
            return None
        self.check_coercion(left, right)
        return Compare(expr.op, left, right)

    def check_coercion(self, left: RouteExpr, right: RouteExpr) -> None:
        """Flag comparisons where AWS converts a string to a number and IoT Hub does not."""
        for value, other in ((left, right), (right, left)):
            is_number = isinstance(other, Const) and type(other.value) in {int, float}
            source = _message_value(value)
            if is_number and isinstance(source, Body):
                self.note(
                    FindingCode.NUMERIC_STRING_COERCION,
                    "AWS converts a numeric string to a number before comparing it with a "
                    'number; IoT Hub does not, so a payload field holding e.g. "60" matches in '
                    "AWS but not in the route",
                    "make sure devices send these fields as JSON numbers",
                )
            elif is_number and isinstance(source, Prop):
                self.note(
                    FindingCode.NUMERIC_STRING_COERCION,
                    "a topic level is compared with a number: AWS converts the level to a "
                    "number, but application properties are strings, so the route never matches",
                    "compare the level with a string literal such as '5'",
                )


def _message_value(expr: RouteExpr) -> Body | Prop | None:
    """The message value an arithmetic expression reads, where AWS would coerce a string."""
    if isinstance(expr, Body | Prop):
        return expr
    if isinstance(expr, Arith):
        return _message_value(expr.left) or _message_value(expr.right)
    if isinstance(expr, Func) and expr.name in _NUMERIC_FUNCTIONS:
        return next((found for arg in expr.args if (found := _message_value(arg))), None)
    return None


def unsupported_function(name: str) -> tuple[FindingCode, str, str]:
    """The finding for a function call that routing cannot express."""
    reason, suggestion = NO_EQUIVALENT.get(
        name.lower(), ("it has no IoT Hub routing equivalent", "evaluate it in the consumer")
    )
    return FindingCode.UNSUPPORTED_FUNCTION, f"{name}(): {reason}", suggestion


def construct_findings(expr: Expr) -> list[tuple[FindingCode, str, str]]:
    """Findings for constructs that routing and plain IoT Hub have no counterpart for."""
    if isinstance(expr, Cast):
        return [
            (
                FindingCode.CAST,
                f"cast(... AS {expr.type_name}) has no routing equivalent",
                "send the field with the right JSON type, or convert in the consumer",
            )
        ]
    if isinstance(expr, Case):
        return [
            (
                FindingCode.CASE_EXPRESSION,
                "CASE expressions have no routing equivalent",
                "rewrite as AND/OR conditions, or evaluate in Stream Analytics",
            )
        ]
    if isinstance(expr, NestedSelect):
        return [
            (
                FindingCode.NESTED_SELECT,
                "nested SELECT over arrays has no routing equivalent",
                "use Stream Analytics (CROSS APPLY GetArrayElements) or a Function",
            )
        ]
    return [
        (
            FindingCode.UNSUPPORTED_EXPRESSION,
            f"{type(expr).__name__} expressions have no routing equivalent",
            "evaluate in the consumer",
        )
    ]


def _dotted(expr: Field) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in expr.path)[1:]
