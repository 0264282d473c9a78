"""One error path for every command: what went wrong in one sentence, and an exit code.

Operators run these commands against production estates under time pressure, so an
expected failure (a missing setting, no credentials, an endpoint that does not answer, a
file that is not what it should be) is said in one sentence naming what to fix, with a
documented exit code (`bridge.exit_codes`). The traceback is for `--debug`.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError

from bridge.errors import (
    BridgeError,
    ConfigError,
    HubThrottled,
    PlanError,
    StoreError,
    WaveError,
)
from bridge.exit_codes import ExitCode

__all__ = ["DEBUG", "explain", "guarded"]

P = ParamSpec("P")
R = TypeVar("R")
DEBUG = {"on": False}  # set by the root --debug option

_DENIED_CODES = {
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
}


def explain(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and sentence for an error a command can expect; None if unexpected."""
    for kind, explainer in _EXPLAINERS:
        if isinstance(exc, kind):
            return explainer(exc)
    botocore = _botocore(exc)
    if botocore is not None:
        return botocore
    return _network(exc)


def guarded(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run a command's function so that expected errors end in one sentence and a code."""

    def wrap(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except (typer.Exit, typer.Abort, typer.BadParameter, SystemExit, KeyboardInterrupt):
                raise  # click prints a usage error with its usage line, and exits 2
            except Exception as exc:
                if DEBUG["on"]:
                    raise
                known = explain(exc)
                code, sentence = known or (
                    ExitCode.FAILED,
                    (
                        f"unexpected error ({type(exc).__name__}: {_first_line(exc)}); run "
                        "`iot-bridge --debug ...` for the traceback"
                    ),
                )
                typer.echo(f"iot-bridge {command}: {sentence}", err=True)
                raise typer.Exit(int(code)) from None

        return run

    return wrap


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no message"


def _settings(exc: BaseException) -> tuple[ExitCode, str]:
    assert isinstance(exc, ValidationError)
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "settings"
    return ExitCode.CONFIG_ERROR, f"the settings are not valid: {where}: {error['msg']}"


def _file(exc: BaseException) -> tuple[ExitCode, str]:
    assert isinstance(exc, OSError)
    name = exc.filename or "a file"
    return ExitCode.STARTUP_FAILED, f"cannot read {name}: {exc.strerror or exc}"


def _throttled(exc: BaseException) -> tuple[ExitCode, str]:
    return (
        ExitCode.STARTUP_FAILED,
        (
            f"IoT Hub kept throttling after every retry ({_first_line(exc)}); check "
            "BRIDGE_IOTHUB__TIER and BRIDGE_IOTHUB__UNITS match the hub, or try again later"
        ),
    )


def _said(code: ExitCode) -> Callable[[BaseException], tuple[ExitCode, str]]:
    return lambda exc: (code, _first_line(exc))


# Order matters: the first matching class wins.
_EXPLAINERS: tuple[
    tuple[type[BaseException], Callable[[BaseException], tuple[ExitCode, str]]], ...
] = (
    (ValidationError, _settings),
    (ConfigError, _said(ExitCode.CONFIG_ERROR)),
    (HubThrottled, _throttled),
    (PlanError, _said(ExitCode.STARTUP_FAILED)),
    (WaveError, _said(ExitCode.USAGE)),
    (StoreError, _said(ExitCode.STARTUP_FAILED)),
    (BridgeError, _said(ExitCode.STARTUP_FAILED)),
    (FileNotFoundError, _file),
    (PermissionError, _file),
    (IsADirectoryError, _file),
)


def _botocore(exc: BaseException) -> tuple[ExitCode, str] | None:
    from botocore import exceptions as boto  # noqa: PLC0415 - only when something failed

    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return (
            ExitCode.CONFIG_ERROR,
            (
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                "AWS_PROFILE) in the environment or in the --env-file"
            ),
        )
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectTimeoutError):
        return (
            ExitCode.STARTUP_FAILED,
            (
                f"cannot reach AWS at {getattr(exc, 'kwargs', {}).get('endpoint_url', '?')}: "
                "check AWS_ENDPOINT_URL and AWS_REGION, and that the network lets you through"
            ),
        )
    if isinstance(exc, boto.NoRegionError):
        return ExitCode.CONFIG_ERROR, "no AWS region: set AWS_REGION"
    if isinstance(exc, boto.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _DENIED_CODES:
            return (
                ExitCode.CONFIG_ERROR,
                (
                    f"AWS refused the credentials or the call ({code}): check AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY and the IAM policy (README: least privilege)"
                ),
            )
        if code in {"ThrottlingException", "TooManyRequestsException"}:
            return (
                ExitCode.STARTUP_FAILED,
                "AWS kept throttling after every retry: lower --concurrency or --rate-scale",
            )
    return None


def _network(exc: BaseException) -> tuple[ExitCode, str] | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            ExitCode.STARTUP_FAILED,
            (
                f"TLS verification failed ({exc.verify_message or exc}): check AWS_IOT_ROOT_CA "
                "or IOTHUB_ROOT_CA, and that the endpoint is the one you meant"
            ),
        )
    import aiohttp  # noqa: PLC0415 - only when something failed

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            ExitCode.STARTUP_FAILED,
            f"TLS verification failed for {exc.host}: check IOTHUB_ROOT_CA",
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (
            ExitCode.STARTUP_FAILED,
            (
                f"cannot reach {exc.host}:{exc.port}: check IOTHUB_CONNECTION_STRING's HostName "
                "(and IOTHUB_GATEWAY_HOST), and that the network lets you through"
            ),
        )
    if isinstance(exc, ConnectionError | TimeoutError):
        return ExitCode.STARTUP_FAILED, f"a connection failed: {_first_line(exc)}"
    return None
