"""The Azure side of the bridge: an asyncio client for IoT Hub's service API."""

from bridge.azure.budget import RateBudget
from bridge.azure.hub import IotHubService
from bridge.azure.jobs import ImportJobResult
from bridge.azure.models import (
    Auth,
    BulkError,
    BulkResult,
    CertificateAuthorityAuth,
    Device,
    DeviceIdentity,
    DeviceImport,
    ImportMode,
    Module,
    SasAuth,
    Twin,
    X509Thumbprints,
)
from bridge.azure.quotas import Operation, Rate, Tier, rate_for
from bridge.azure.retry import HubStats, RetryPolicy
from bridge.azure.sas import SasTokenSource, ServiceConnectionString
from bridge.errors import (
    ConnectionStringError,
    HubConnectionError,
    HubError,
    HubThrottled,
    NotFound,
    PreconditionFailed,
)

__all__ = [
    "Auth",
    "BulkError",
    "BulkResult",
    "CertificateAuthorityAuth",
    "ConnectionStringError",
    "Device",
    "DeviceIdentity",
    "DeviceImport",
    "HubConnectionError",
    "HubError",
    "HubStats",
    "HubThrottled",
    "ImportJobResult",
    "ImportMode",
    "IotHubService",
    "Module",
    "NotFound",
    "Operation",
    "PreconditionFailed",
    "Rate",
    "RateBudget",
    "RetryPolicy",
    "SasAuth",
    "SasTokenSource",
    "ServiceConnectionString",
    "Tier",
    "Twin",
    "X509Thumbprints",
    "rate_for",
]
