"""What a rule translation produces: frozen pydantic models and the finding codes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = ["EndpointSuggestion", "Finding", "FindingCode", "RouteSource", "RuleTranslation"]


class FindingCode(StrEnum):
    """Stable identifiers for everything that does not carry over faithfully."""

    SQL_ERROR = "SQL_ERROR"
    SQL_VERSION = "SQL_VERSION"
    RULE_DISABLED = "RULE_DISABLED"
    ERROR_ACTION = "ERROR_ACTION"
    SELECT_PROJECTION = "SELECT_PROJECTION"
    UNSUPPORTED_FUNCTION = "UNSUPPORTED_FUNCTION"
    NESTED_SELECT = "NESTED_SELECT"
    CASE_EXPRESSION = "CASE_EXPRESSION"
    CAST = "CAST"
    IN_OPERATOR = "IN_OPERATOR"
    ARRAY_INDEX = "ARRAY_INDEX"
    UNSUPPORTED_NAME = "UNSUPPORTED_NAME"
    UNSUPPORTED_LITERAL = "UNSUPPORTED_LITERAL"
    UNSUPPORTED_EXPRESSION = "UNSUPPORTED_EXPRESSION"
    NUMERIC_STRING_COERCION = "NUMERIC_STRING_COERCION"
    CLIENT_ID_ASSUMED = "CLIENT_ID_ASSUMED"
    SUPERSET_CONDITION = "SUPERSET_CONDITION"
    SHADOW_TOPIC = "SHADOW_TOPIC"
    PRESENCE_TOPIC = "PRESENCE_TOPIC"
    LIFECYCLE_TOPIC = "LIFECYCLE_TOPIC"
    RESERVED_TOPIC = "RESERVED_TOPIC"
    SUBSTITUTION_TEMPLATE = "SUBSTITUTION_TEMPLATE"
    NOT_NATIVE_ENDPOINT = "NOT_NATIVE_ENDPOINT"
    OUTPUT_SHAPE = "OUTPUT_SHAPE"
    REPUBLISH = "REPUBLISH"
    NEEDS_HUMAN = "NEEDS_HUMAN"


class RouteSource(StrEnum):
    """The IoT Hub routing source a rule's messages come from."""

    DEVICE_MESSAGES = "DeviceMessages"
    TWIN_CHANGE_EVENTS = "TwinChangeEvents"
    DEVICE_CONNECTION_STATE_EVENTS = "DeviceConnectionStateEvents"
    DEVICE_LIFECYCLE_EVENTS = "DeviceLifecycleEvents"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Finding(_Frozen):
    """One thing that does not carry over faithfully, why, and what to do instead."""

    code: FindingCode
    message: str
    suggestion: str


class EndpointSuggestion(_Frozen):
    """The Azure counterpart suggested for one AWS rule action."""

    action_type: str
    kind: str
    native: bool
    details: dict[str, str]
    issues: tuple[Finding, ...] = ()


class RuleTranslation(_Frozen):
    """An AWS topic rule expressed as an IoT Hub route, or the exact reasons it cannot be."""

    rule_name: str
    enabled: bool
    topic_filter: str | None
    device_level: int | None = None  # the topic level naming the device, for the relay
    source: RouteSource | None
    route_condition: str | None
    endpoints: tuple[EndpointSuggestion, ...]
    issues: tuple[Finding, ...]

    @property
    def finding_codes(self) -> frozenset[FindingCode]:
        """Every finding code of the rule and of its endpoints."""
        codes = {finding.code for finding in self.issues}
        codes.update(finding.code for endpoint in self.endpoints for finding in endpoint.issues)
        return frozenset(codes)
