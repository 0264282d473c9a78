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

__all__ = ["CloudSettings", "HttpSettings", "Settings", "StoreSettings", "redacted"]


class CloudSettings(BaseSettings):
    """Connection settings for AWS IoT and Azure IoT Hub, read under their standard names."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

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
    IOTHUB_ROOT_CA: Path | None = None
    AZURE_STORAGE_CONNECTION_STRING: SecretStr | None = None


class StoreSettings(BaseModel):
    """Where the bridge keeps its state: a SQLite file by default, PostgreSQL for replicas."""

    dsn: str = "sqlite:///iot-bridge.db"


class HttpSettings(BaseModel):
    """The health and metrics endpoint."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class Settings(BaseSettings):
    """How the bridge behaves; every field can be set as BRIDGE_<SECTION>__<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_", env_nested_delimiter="__", extra="ignore"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    store: StoreSettings = StoreSettings()
    http: HttpSettings = HttpSettings()


def redacted(model: BaseModel) -> dict[str, Any]:
    """Dump settings as JSON-ready data with every secret replaced by '**********'."""
    return model.model_dump(mode="json")
