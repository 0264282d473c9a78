"""Settings: where the clouds are (standard names) and how the bridge behaves (BRIDGE_*).

The cloud connection names are the ones every SDK and `iot-bridge sim up` use
(`AWS_REGION`, `IOTHUB_CONNECTION_STRING`, ...), so pointing the bridge at the local
stand-ins or at the real clouds differs only by the env file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bridge.errors import ConfigError

__all__ = [
    "SECRETS_DIR_ENV",
    "SECRET_SETTINGS",
    "CloudSettings",
    "CutoverSettings",
    "HttpSettings",
    "IotHubSettings",
    "MirrorSettings",
    "RelaySettings",
    "ReverseSettings",
    "Settings",
    "StoreSettings",
    "redacted",
    "secrets_dir",
]


class CloudSettings(BaseSettings):
    """Connection settings for AWS IoT and Azure IoT Hub, read under their standard names."""

    # The env file is UTF-8 whatever the locale (bridge_sim.envfile writes it so).
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=True, env_file_encoding="utf-8"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - SecretFiles instead
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, and the secrets mounted as files (`SecretFiles`)."""
        files = SecretFiles(settings_cls, dotenv_settings, case_sensitive=True)
        return init_settings, env_settings, dotenv_settings, files

    AWS_REGION: str = "us-east-1"
    AWS_ACCESS_KEY_ID: SecretStr | None = None
    AWS_SECRET_ACCESS_KEY: SecretStr | None = None
    AWS_ENDPOINT_URL: str | None = Field(
        default=None, description="Control plane and shadow REST API; unset for real AWS."
    )
    AWS_IOT_DATA_ENDPOINT: str | None = Field(
        default=None, description="host[:port] of the mutual-TLS MQTT endpoint."
    )
    AWS_IOT_ROOT_CA: Path | None = None
    AWS_IOT_BRIDGE_CERT: Path | None = None
    AWS_IOT_BRIDGE_KEY: Path | None = None
    IOTHUB_CONNECTION_STRING: SecretStr | None = None
    IOTHUB_EVENTHUB_CONNECTION_STRING: SecretStr | None = None
    IOTHUB_GATEWAY_HOST: str | None = None
    IOTHUB_HOSTNAME: str | None = Field(
        default=None,
        description="The hub's device-facing host name, when it differs from the service "
        "connection string's HostName (emulators); unset for real IoT Hub.",
    )
    IOTHUB_ROOT_CA: Path | None = None
    AZURE_STORAGE_CONNECTION_STRING: SecretStr | None = None


class StoreSettings(BaseModel):
    """Where the bridge keeps its state: a SQLite file by default, PostgreSQL for replicas."""

    dsn: str = "sqlite:///iot-bridge.db"


class HttpSettings(BaseModel):
    """The health and metrics endpoint."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class MirrorSettings(BaseModel):
    """How `iot-bridge run` mirrors the fleet."""

    delete_policy: Literal["delete", "disable", "tag"] = Field(
        default="delete",
        description="On Azure when a thing is deleted on AWS: delete the device, disable it, "
        "or only tag its twin (tags.aws.deleted).",
    )
    concurrency: int = Field(default=32, ge=1, le=1024, description="Device writes in flight.")
    reconcile_interval: float = Field(
        default=900.0, ge=0, description="Seconds between anti-entropy passes; 0 turns them off."
    )
    client_id: str | None = Field(
        default=None,
        description="MQTT client id on AWS; it names the persistent session, so each replica "
        "needs its own. Default: iot-bridge-<digest of the bridge certificate>.",
    )
    shared_group: str | None = Field(
        default=None, description="MQTT 5 shared-subscription group, for several replicas."
    )
    session_expiry: int = Field(
        default=3600, ge=60, description="Seconds AWS keeps the bridge's session while away."
    )
    enable_registry_events: bool = Field(
        default=False,
        description="At start, turn on the AWS IoT registry events the mirror needs when "
        "they are off (UpdateEventConfigurations); otherwise the daemon refuses to start.",
    )
    aws_rate_scale: float = Field(
        default=1.0,
        ge=0,
        description="Multiplies the AWS control-plane request budgets; 0 removes them "
        "(local stand-ins only).",
    )


class RelaySettings(BaseModel):
    """How `iot-bridge run` relays AWS telemetry into IoT Hub (the second service)."""

    enabled: bool = Field(default=False, description="Run the telemetry relay beside the mirror.")
    topics: list[str] = Field(
        default_factory=list,
        description="'filter=device-level' pairs (dt/+/telemetry/#=2); default: the FROM "
        "filters of the plan's rules and the topic level their analysis found.",
    )
    client_id: str | None = Field(
        default=None,
        description="MQTT client id of the relay's own persistent session. Default: the "
        "mirror's client id with '-relay' appended.",
    )
    shared_group: str | None = Field(
        default=None, description="MQTT 5 shared-subscription group, for several replicas."
    )
    session_expiry: int = Field(
        default=3600, ge=60, description="Seconds AWS keeps the relay's session while away."
    )
    sessions: int = Field(
        default=1,
        ge=1,
        le=256,
        description="AWS MQTT sessions the relay reads through, in one shared-subscription "
        "group: AWS IoT allows about 100 publishes/s per connection, so a fleet sending more "
        "needs more. With several, AWS spreads a device's messages over them and their "
        "order is what AWS delivered first, not guaranteed.",
    )
    in_flight: int = Field(
        default=100,
        ge=1,
        le=65535,
        description="Messages received and not yet accepted by IoT Hub, at most (the MQTT "
        "Receive Maximum); AWS IoT allows 100 per connection.",
    )
    transport: Literal["amqp", "mqtt"] = Field(
        default="amqp",
        description="How relay modules send: 'amqp' multiplexes up to links_per_connection "
        "module identities on one AMQP 1.0 connection (one CBS token and link each), as "
        "Microsoft's C/.NET SDKs and protocol gateway do; 'mqtt' opens one azure-iot-device "
        "connection per module, pooled (connections).",
    )
    connections: int = Field(
        default=64, ge=1, le=4096, description="Relay module connections kept open (LRU, mqtt)."
    )
    links_per_connection: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="Module identities one AMQP connection carries before another opens.",
    )
    token_ttl: int = Field(
        default=3600, ge=60, description="Seconds each relay module's SAS token is valid (amqp)."
    )
    idle_link_seconds: float = Field(
        default=600,
        ge=0,
        description="A relay module that sent nothing for this long gives its AMQP link back "
        "(about 6 KB each) and is authorized again on its next message; 0 keeps every link.",
    )
    state_ttl: float = Field(
        default=1.0,
        ge=0,
        description="Seconds a device's migration state is cached; a cutover stops its relay "
        "at most this late.",
    )
    quota_alert_ratio: float = Field(
        default=0.8, gt=0, le=1, description="Daily message quota used that logs a warning."
    )


class IotHubSettings(BaseModel):
    """The IoT Hub the bridge writes to: its tier and units set the rate budget."""

    tier: Literal["F1", "S1", "S2", "S3"] | None = Field(
        default=None, description="Pace calls to this tier's quotas; unset: no pacing."
    )
    units: int = Field(default=1, ge=1)
    relay_module: str = "aws-bridge"
    mirror_reported: bool = Field(
        default=True,
        description="Write AWS reported state to the relay module twin's reported properties "
        "(through the module's own connection; the service API cannot write reported).",
    )
    reported_connections: int = Field(
        default=32, ge=1, le=1024, description="Relay module connections kept open for that."
    )
    import_threshold: int = Field(
        default=1000,
        ge=1,
        description="Initial sync: this many new devices or more are created with an import "
        "job through AZURE_STORAGE_CONNECTION_STRING (no identity-registry quota spent).",
    )


class CutoverSettings(BaseModel):
    """How `iot-bridge run` cuts waves over (`iot-bridge cutover ...` plans and starts them)."""

    enabled: bool = Field(default=True, description="Run the cutover service in the daemon.")
    poll_interval: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Seconds between looks at waves, job executions and device twins.",
    )
    hub_host_name: str | None = Field(
        default=None,
        description="Host name devices are told to connect to; default: IOTHUB_HOSTNAME, "
        "else the service connection string's.",
    )
    trust_anchors: list[str] = Field(
        default=["DigiCert Global Root G2", "Microsoft RSA Root CA 2017"],
        description="Roots the job tells devices to trust for IoT Hub (IOTHUB_ROOT_CA is "
        "added as PEM when set, e.g. the emulator's CA).",
    )
    soak_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="Seconds a cut-over device stays on Azure before it is finalized (the "
        "mirror, relay and reverse path then leave it alone).",
    )
    retire_certificates: bool = Field(
        default=False,
        description="Finalizing also sets the thing's AWS certificates INACTIVE and detaches "
        "their policies (recorded first; `iot-bridge cutover restore-aws` undoes it).",
    )
    fallback_deadline_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="Seconds the job tells a device to keep trying Azure before it marks the "
        "execution FAILED and stays on AWS (fallbackDeadlineSeconds).",
    )
    connection_events: bool = Field(
        default=False,
        description="Learn arrivals from IoT Hub's connection-state events on the Event "
        "Hubs-compatible endpoint (IOTHUB_EVENTHUB_CONNECTION_STRING and "
        "AZURE_STORAGE_CONNECTION_STRING needed); otherwise, or while it cannot be read, "
        "from twin queries. Off by default: it reads every event of the built-in endpoint, "
        "relayed telemetry included (measured: it cut the relay from 1,688 to 692 msg/s).",
    )
    consumer_group: str = Field(
        default="iot-bridge",
        description="The cutover's own consumer group on the Event Hubs-compatible endpoint "
        "(the landing zone creates it; no other reader may share it).",
    )
    checkpoint_container: str = Field(
        default="iot-bridge-cutover",
        description="Blob container for the cutover reader's checkpoints and partition "
        "ownership; created when missing.",
    )
    twin_query_interval: float = Field(
        default=30.0,
        gt=0,
        description="While connection-state events are read, seconds between the twin "
        "queries kept as a safety net (a hub without the connection-state route).",
    )


class ReverseSettings(BaseModel):
    """How `iot-bridge run` carries cut-over devices' Azure state and telemetry back to AWS."""

    enabled: bool = Field(
        default=False, description="Run the reverse path (Azure to AWS after cutover)."
    )
    consumer_group: str = Field(
        default="iot-bridge-reverse",
        description="The bridge's own consumer group on IoT Hub's Event Hubs-compatible "
        "endpoint (create it on the hub; no other reader may share it).",
    )
    checkpoint_container: str = Field(
        default="iot-bridge-reverse",
        description="Blob container (AZURE_STORAGE_CONNECTION_STRING) for the consumer's "
        "checkpoints and partition ownership; created when missing.",
    )
    client_id: str | None = Field(
        default=None,
        description="MQTT client id the reverse path publishes with on AWS. Default: the "
        "mirror's client id with '-reverse' appended.",
    )
    telemetry: bool = Field(
        default=True, description="Republish cut-over devices' telemetry on their AWS topics."
    )
    twins: bool = Field(
        default=True,
        description="Write cut-over devices' reported (and Azure-made desired) properties to "
        "their AWS shadows.",
    )
    topic_template: str | None = Field(
        default=None,
        description="AWS topic for a device's own message without an awsTopic property, "
        "such as 'dt/{device}' ({device} is the thing name); unset: dead-lettered.",
    )
    topic_templates: dict[str, str] = Field(
        default_factory=dict,
        description="Per thing type, the AWS topic template (JSON object); a thing type "
        "not listed uses topic_template.",
    )
    in_flight: int = Field(
        default=100,
        ge=1,
        le=65535,
        description="Publishes to AWS awaiting their PUBACK, at most (AWS IoT allows 100 "
        "in flight per connection).",
    )
    state_ttl: float = Field(
        default=1.0, ge=0, description="Seconds a device's migration state is cached."
    )


class Settings(BaseSettings):
    """How the bridge behaves; every field can be set as BRIDGE_<SECTION>__<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_", env_nested_delimiter="__", extra="ignore", env_file_encoding="utf-8"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - SecretFiles instead
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, and the secrets mounted as files (`SecretFiles`)."""
        files = SecretFiles(settings_cls, dotenv_settings, case_sensitive=False)
        return init_settings, env_settings, dotenv_settings, files

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a stop (SIGTERM, Ctrl-C) waits for work in flight to finish "
        "before cancelling it; a second signal exits at once.",
    )
    store: StoreSettings = StoreSettings()
    http: HttpSettings = HttpSettings()
    mirror: MirrorSettings = MirrorSettings()
    relay: RelaySettings = RelaySettings()
    iothub: IotHubSettings = IotHubSettings()
    cutover: CutoverSettings = CutoverSettings()
    reverse: ReverseSettings = ReverseSettings()


def redacted(model: BaseModel) -> dict[str, Any]:
    """Dump settings as JSON-ready data with every secret replaced by '**********'
    (a password inside a URL too: the store's DSN may carry one)."""
    dumped: dict[str, Any] = _hide_passwords(model.model_dump(mode="json"))
    return dumped


def _hide_passwords(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _hide_passwords(item) for key, item in value.items()}
    if isinstance(value, str) and "://" in value:
        try:
            parts = urlsplit(value)
            password = parts.password
        except ValueError:
            return value
        if password:
            user = parts.username or ""
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit(parts._replace(netloc=f"{user}:**********@{host}"))
    return value


# Secrets mounted as files, the way Docker and Kubernetes hand them over. Each setting below
# can be given (1) in the environment or the env file, as always, (2) as NAME_FILE naming a
# file that holds it, or (3) as a file named NAME in the secrets directory: BRIDGE_SECRETS_DIR,
# else /run/secrets when it exists. One way per setting: two are an error naming both. The
# file's trailing newline is dropped; its contents are never logged or shown.
SECRETS_DIR_ENV = "BRIDGE_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")
# environment name -> where the value goes in its settings class
SECRET_SETTINGS: dict[type[BaseSettings], dict[str, tuple[str, ...]]] = {
    CloudSettings: {
        name: (name,)
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "IOTHUB_CONNECTION_STRING",
            "IOTHUB_EVENTHUB_CONNECTION_STRING",
            "AZURE_STORAGE_CONNECTION_STRING",
        )
    },
    Settings: {"BRIDGE_STORE__DSN": ("store", "dsn")},
}


def secrets_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where secret files named after their setting are looked for; None: nowhere."""
    environ = os.environ if environ is None else environ
    named = environ.get(SECRETS_DIR_ENV)
    if named:
        path = Path(named)
        if not path.is_dir():
            raise ConfigError(f"{SECRETS_DIR_ENV} names {path}, which is not a directory")
        return path
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


class SecretFiles(PydanticBaseSettingsSource):
    """Reads the settings of `SECRET_SETTINGS` from NAME_FILE or the secrets directory."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        dotenv: PydanticBaseSettingsSource,
        *,
        case_sensitive: bool,
    ) -> None:
        super().__init__(settings_cls)
        self._names = SECRET_SETTINGS.get(settings_cls, {})
        fold = (lambda key: key) if case_sensitive else str.upper
        from_file = dotenv.env_vars if isinstance(dotenv, DotEnvSettingsSource) else {}
        # What the env file and the environment say, the environment winning as usual.
        self._given = {fold(k): v for k, v in {**from_file, **os.environ}.items() if v is not None}

    def get_field_value(
        self,
        field: FieldInfo,  # noqa: ARG002 - the base class's signature
        field_name: str,
    ) -> tuple[Any, str, bool]:
        """Unused: `__call__` reads every name at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        directory = secrets_dir(self._given) if self._names else None
        found: dict[str, Any] = {}
        for name, where in self._names.items():
            value = self._read(name, directory)
            if value is None:
                continue
            node = found
            for part in where[:-1]:
                node = node.setdefault(part, {})
            node[where[-1]] = value
        return found

    def _read(self, name: str, directory: Path | None) -> str | None:
        pointer = self._given.get(f"{name}_FILE") or None
        in_dir = directory / name if directory is not None else None
        if in_dir is not None and not (in_dir.exists() or in_dir.is_symlink()):
            in_dir = None
        if name in self._given and (pointer or in_dir):
            other = f"{name}_FILE" if pointer else f"the secret file {in_dir}"
            raise ConfigError(f"{name} is set both directly and through {other}; keep one")
        if pointer and in_dir and Path(pointer) != in_dir:
            raise ConfigError(
                f"{name} is set both through {name}_FILE ({pointer}) and through the secret "
                f"file {in_dir}; keep one"
            )
        if pointer:
            return _read_secret(Path(pointer), f"{name}_FILE names {pointer}")
        if in_dir is not None:
            return _read_secret(in_dir, f"the secret file {in_dir} for {name}")
        return None


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what}, which cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what}, which is not UTF-8 text") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value.strip():
        raise ConfigError(f"{what}, which is empty")
    return value
