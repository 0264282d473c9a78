"""Settings: where the clouds are (standard names) and how the bridge behaves (BRIDGE_*).

The cloud connection names are the ones every SDK and `iot-bridge sim up` use
(`AWS_REGION`, `IOTHUB_CONNECTION_STRING`, ...), so pointing the bridge at the local
stand-ins or at the real clouds differs only by the env file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "CloudSettings",
    "CutoverSettings",
    "HttpSettings",
    "IotHubSettings",
    "MirrorSettings",
    "RelaySettings",
    "Settings",
    "StoreSettings",
    "redacted",
]


class CloudSettings(BaseSettings):
    """Connection settings for AWS IoT and Azure IoT Hub, read under their standard names."""

    # The env file is UTF-8 whatever the locale (bridge_sim.envfile writes it so).
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=True, env_file_encoding="utf-8"
    )

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


class Settings(BaseSettings):
    """How the bridge behaves; every field can be set as BRIDGE_<SECTION>__<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_", env_nested_delimiter="__", extra="ignore", env_file_encoding="utf-8"
    )

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


def redacted(model: BaseModel) -> dict[str, Any]:
    """Dump settings as JSON-ready data with every secret replaced by '**********'."""
    return model.model_dump(mode="json")
