"""Line rules that find AWS IoT touch points; recipes pick verdicts per kind.

Finding is allowed to be cheap (regular expressions over lines); rewriting is not, and
happens in the recipes with syntax-aware tools.
"""

from __future__ import annotations

import io
import re
import tokenize
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

from bridge.firmware.models import TouchPoint

__all__ = ["PREFILTER", "RULES", "Rule", "matching_lines", "touch_points", "worth_reading"]


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    human_reason: str  # why a human is needed when the recipe does not rewrite this kind


def _rule(kind: str, pattern: str, reason: str, flags: int = 0) -> Rule:
    return Rule(kind, re.compile(pattern, flags), reason)


RULES: tuple[Rule, ...] = (
    _rule(
        "endpoint",
        r"[a-z0-9]+(?:-ats)?\.iot\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?",
        "AWS IoT endpoint: set the IoT Hub host name",
    ),
    _rule(
        "endpoint_lookup",
        r"describe[-_]endpoint",
        "endpoint looked up with the AWS CLI or SDK: use the IoT Hub host name instead",
    ),
    _rule(
        "config_key",
        r"\b\w*(?:IOT_ENDPOINT|iot_endpoint|iotEndpoint|AWS_IOT_\w+|MQTT_BROKER_ENDPOINT)\b",
        "endpoint setting: point it at the IoT Hub host name",
    ),
    _rule(
        "root_ca",
        r"AmazonRootCA\d?|AWS_ROOT_CA|rootCA|root-CA|root_ca|setCACert|setTrustAnchors|CERT_CA\b",
        "AWS trust anchor: trust DigiCert Global Root G2 and Microsoft RSA Root CA 2017",
        re.IGNORECASE,
    ),
    _rule(
        "certificate",
        r"cert_filepath|pri_key_filepath|certfile|keyfile|certificate\.pem|private\.pem|"
        r"\.pem\.crt|\.pem\.key|clientcert|clientkey|setCertificate|setPrivateKey|"
        r"client_cert_pem|client_key_pem|configureCredentials",
        "device certificate and key: keep them, register the thumbprint in IoT Hub",
        re.IGNORECASE,
    ),
    _rule(
        "client_id",
        r"\b(?:client_?id|thing_?name|clientIdentifier)\b\s*(?:=|:|\()|"
        r"#define\s+\w*(?:CLIENT_?ID|CLIENT_IDENTIFIER|THING_NAME)\b|setClientId|setId\(|"
        r"client_id\s*=|pMqttClientId",
        "client id: must equal the IoT Hub device id",
        re.IGNORECASE,
    ),
    _rule(
        "named_shadow",
        r"\$aws/things/.*?shadow/name/|shadow_name\s*=|ShadowName",
        "named shadow: no twin equivalent; the patch nests it under `shadows.<name>`",
    ),
    _rule(
        "shadow",
        r"\$aws/things/.*?shadow|iotshadow|ShadowClient|shadowUpdate|shadowGet|"
        r"shadowRegisterDeltaCallback|UpdateShadowRequest|GetShadowRequest|thingShadow|"
        r"aws_iot_shadow_\w+",
        "shadow: map to twin reported patches, twin GET and desired patches",
    ),
    _rule(
        "jobs",
        r"\$aws/things/.*?jobs|iotjobs|IotJobsClient|AWSIoTMQTTThingJobsClient|"
        r"jobExecution|subscribeToJobs|startJobNotifications|\bJobs_(?:StartNext|GetTopic|MatchTopic|Update|GetPending|Describe)\b",
        "AWS IoT Jobs: IoT Hub has direct methods and scheduled jobs, not per-device queues",
    ),
    _rule(
        "ota",
        r"\$aws/things/.*?streams|OTA_Init|otaPal|OtaAgent|esp_https_ota|AFR_OTA",
        "OTA over AWS jobs/streams: move to Device Update for IoT Hub or the cutover job",
    ),
    _rule(
        "fleet_provisioning",
        r"\$aws/certificates/create|\$aws/provisioning-templates|iotidentity|"
        r"RegisterThing|CreateKeysAndCertificate",
        "fleet provisioning: replace with the Device Provisioning Service (DPS)",
    ),
    _rule(
        "greengrass",
        r"greengrass|awsgreengrasssdk|ggcore",
        "Greengrass: move to IoT Edge by hand",
        re.IGNORECASE,
    ),
    _rule(
        "sigv4_websocket",
        r"websockets_with_default_aws_signing|websockets_with_custom_handshake|"
        r"useWebsocket\s*=\s*True|protocol\s*:\s*['\"]wss['\"]|X-Amz-|AwsSigV4|sigv4",
        "SigV4 websocket: IoT Hub uses MQTT over WebSockets on 443 with SAS or X.509",
    ),
    _rule(
        "aws_sdk_call",
        r"boto3\.client\(\s*['\"]iot|boto3\.client\(\s*['\"]iot-data|@aws-sdk/client-iot|"
        r"AWS\.IotData|aws-sdk['\"]|IotDataPlane",
        "AWS SDK call from the device: needs a cloud-side replacement",
    ),
    _rule(
        "dependency",
        r"^\s*(?:awsiotsdk|AWSIoTPythonSDK|awscrt)\b|\"aws-iot-device-sdk(?:-v2)?\"\s*:|"
        r"\"aws-crt\"\s*:|lib_deps.*(?:PubSubClient|aws|MQTT)",
        "AWS IoT SDK dependency: replace with Microsoft's azure-iot-device package",
        re.IGNORECASE,
    ),
    _rule(
        "keep_alive",
        r"keep_?alive|keepAlive|KEEP_ALIVE",
        "keep-alive: IoT Hub allows at most 1177 seconds",
        re.IGNORECASE,
    ),
    _rule(
        "topic",
        r"\.publish\(|\.subscribe\(|MQTT_Publish|MQTT_Subscribe|esp_mqtt_client_publish|"
        r"esp_mqtt_client_subscribe|mqtt_publish|mqtt_subscribe|publishAsync|beginMessage\(",
        "MQTT topic: IoT Hub allows only its own topics (devices/{id}/messages/events/ ...)",
    ),
)

# One pass over the lower-cased bytes of every file decides whether it is worth reading
# line by line. Literals only, matched case-sensitively on lowered data: an inline (?i)
# group makes Python's regex engine about seven times slower on a 50,000-file tree.
_NEEDLES = (
    "amazonaws.com", "$aws/", "awsiot", "awscrt", "aws-iot", "aws_iot", "amazonrootca",
    "describe-endpoint", "iot-data", "greengrass", "umqtt", "paho", "pubsubclient",
    "mqttclient", "esp_mqtt", "core_mqtt", "coremqtt", "mqtt_client", "private key",
    "clientcredential", "wifi_pass", "wifipass", "wlan.connect", "passphrase", "_pass",
    "password", "thingshadow", "certpath:", "aws::iot", "awsiotmqtt",
    "mqttclientconnectionconfigbuilder", "software.amazon.awssdk.iot",
    "com.amazonaws.services.iot",
)  # fmt: skip
PREFILTER = re.compile("|".join(re.escape(needle) for needle in _NEEDLES).encode())


def worth_reading(data: bytes) -> bool:
    """Whether a file's bytes mention anything a recipe or the secret check looks for."""
    return PREFILTER.search(data.lower()) is not None


def touch_points(
    path: str,
    text: str,
    stack: str,
    rewritten: Mapping[str, str],
    *,
    rules: Iterable[Rule] = RULES,
) -> list[TouchPoint]:
    """One touch point per (line, kind); `rewritten` maps a kind to what the patch does."""
    rules = tuple(rules)
    points: list[TouchPoint] = []
    prose: list[_Span] | None = None
    for number, line in matching_lines(text, [rule.pattern for rule in rules]):
        if "\x00" in line:
            continue
        seen: set[str] = set()
        for rule in rules:
            if rule.kind in seen or not rule.pattern.search(line):
                continue
            if rule.kind in _PROSE_BLIND and path.endswith(".py"):
                prose = _prose(text) if prose is None else prose
                spans = [s for s in prose if _PROSE_BLIND[rule.kind] or not s.triple]
                if all(_inside(spans, number, m) for m in rule.pattern.finditer(line)):
                    continue  # "-c <certFilePath>" in usage text uses no certificate
            seen.add(rule.kind)
            if rule.kind == "shadow" and "named_shadow" in seen:
                continue
            action = rewritten.get(rule.kind)
            points.append(
                TouchPoint(
                    file=path,
                    line=number,
                    kind=rule.kind,
                    stack=stack,
                    verdict="rewritten" if action else "needs_human",
                    reason=action or rule.human_reason,
                )
            )
    return points


# Kinds that also appear in a program's help and usage text, and whether triple-quoted
# strings count as such text for them (an endpoint in one may be a config template; a
# certificate path in one is kept as it is either way: the device keeps its certificate).
_PROSE_BLIND = {"root_ca": True, "certificate": True, "endpoint": False}
_PROSE_KEYWORDS = frozenset({"help", "usage", "description", "epilog"})


@dataclass(frozen=True, slots=True)
class _Span:
    start: tuple[int, int]  # (line, column), as tokenize counts them
    end: tuple[int, int]
    triple: bool  # a triple-quoted string, rather than help=/usage=/print() text


def _inside(spans: list[_Span], number: int, match: re.Match[str]) -> bool:
    start, end = (number, match.start()), (number, match.end())
    return any(span.start <= start and end <= span.end for span in spans)


class _Prose:
    """Follows a token stream, collecting the spans of help and usage strings."""

    def __init__(self) -> None:
        self.spans: list[_Span] = []
        self.depth = 0
        self.until: int | None = None  # in prose while the bracket depth stays at this
        self.commas_end = False  # a keyword argument's text ends at the next comma
        self.previous = ["", ""]

    def feed(self, token: tokenize.TokenInfo) -> None:
        kind, string = token.type, token.string
        if kind == tokenize.OP and string in "([{":
            self.depth += 1
            if self.previous[-1] == "print" and self.until is None:
                self.until, self.commas_end = self.depth, False
        elif kind == tokenize.OP and string in ")]}":
            self.depth -= 1
        ended = self.commas_end and (self.depth, string) == (self.until, ",")
        if self.until is not None and (self.depth < self.until or ended):
            self.until = None
        if kind == tokenize.COMMENT:
            # "#python pub.py -r <rootCAFilePath> -c <certFilePath>": a comment is prose
            self.spans.append(_Span(token.start, token.end, triple=False))
        if kind == tokenize.STRING:
            keyword = self.previous[-1] == "=" and self.previous[-2] in _PROSE_KEYWORDS
            if self.until is None and keyword:
                self.until, self.commas_end = self.depth, True
            triple = string.lstrip("rbuRBUfF")[:3] in {'"""', "'''"}
            if self.until is not None or triple:
                self.spans.append(_Span(token.start, token.end, self.until is None))
        if kind not in {tokenize.NL, tokenize.COMMENT}:
            self.previous = [self.previous[-1], string]


def _prose(text: str) -> list[_Span]:
    """Where a Python program's help and usage text lies: the strings given to argparse's
    `help=`/`usage=`/`description=`/`epilog=` and to `print(...)`, triple-quoted
    strings (usage blocks, docstrings) and comments. Empty when the file does not tokenize."""
    if _ODD_BREAKS.search(text):
        return []  # tokenize counts lines differently from str.splitlines here
    prose = _Prose()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            prose.feed(token)
    except (tokenize.TokenError, SyntaxError):
        return []
    return prose.spans


_ODD_BREAKS = re.compile("\r(?!\n)|[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


@cache
def _whole_text(pattern: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(pattern.pattern, pattern.flags | re.MULTILINE)


def matching_lines(text: str, patterns: Sequence[re.Pattern[str]]) -> list[tuple[int, str]]:
    """(number, line) of every line, as `str.splitlines` counts them, that some pattern
    may match: each pattern runs once over the whole text (in C) instead of once per line
    in Python, which took 15 s on a 2 MB file. Every line a match spans is returned, so
    a line's own match hidden inside a longer one is still looked at by the caller."""
    lines = text.splitlines()
    if _ODD_BREAKS.search(text):
        # `^` and `$` see only "\n" in a whole text; a lone "\r" (or a form feed) ends
        # a line for splitlines: such a file is read line by line.
        return list(enumerate(lines, start=1))
    starts = list(accumulate((len(line) + 1 for line in text.split("\n")), initial=0))
    wanted: set[int] = set()
    for pattern in patterns:
        for match in _whole_text(pattern).finditer(text):
            first = bisect_right(starts, match.start()) - 1
            last = bisect_right(starts, max(match.end() - 1, match.start())) - 1
            wanted.update(range(first, last + 1))
    return [(index + 1, lines[index]) for index in sorted(wanted) if index < len(lines)]
