"""`iot-bridge firmware scan` and `iot-bridge firmware patch`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from bridge.firmware.package import build_package
from bridge.firmware.patch import patch
from bridge.firmware.recipes import MAX_REWRITE_BYTES, DeviceIdSource, KeySource, PatchOptions
from bridge.firmware.report import to_html, to_json, to_markdown
from bridge.firmware.scan import scan

__all__ = ["firmware_app"]

firmware_app = typer.Typer(
    no_args_is_help=True, help="Find AWS IoT code in a device repository and port it to IoT Hub."
)

Repo = Annotated[
    Path, typer.Argument(exists=True, file_okay=False, resolve_path=True, help="Device repository.")
]
Format = Literal["json", "md", "html"]
Auth = Annotated[
    str,
    typer.Option(
        "--auth",
        help="x509: devices keep their certificate (thumbprint auth); sas: a device key "
        "provisioned at cutover. Stacks that cannot do SAS report why.",
    ),
]
SasKeyFrom = Annotated[
    str,
    typer.Option(help="With --auth sas: where the device reads its key, env:NAME or file:PATH."),
]

MaxRewriteBytes = Annotated[
    int,
    typer.Option(
        min=1,
        help="Files larger than this that use AWS IoT are reported as needing a human, not parsed.",
    ),
]


def _options(
    hub: str, device_id_from: str, auth: str, sas_key_from: str, max_rewrite_bytes: int
) -> PatchOptions:
    if auth not in {"x509", "sas"}:
        raise typer.BadParameter("--auth must be x509 or sas")
    try:
        return PatchOptions(
            hub=hub,
            device_id=DeviceIdSource.parse(device_id_from),
            auth="sas" if auth == "sas" else "x509",
            sas_key=KeySource.parse(sas_key_from),
            max_rewrite_bytes=max_rewrite_bytes,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


_RENDER = {"json": to_json, "md": to_markdown, "html": to_html}


@firmware_app.command("scan")
def scan_cmd(
    path: Repo,
    fmt: Annotated[str, typer.Option("--format", help="json, md or html.")] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here.")
    ] = None,
    device_id_from: Annotated[
        str,
        typer.Option(help="As for patch: the verdicts are those of patching with it."),
    ] = "client-id",
    auth: Auth = "x509",
    sas_key_from: SasKeyFrom = "env:IOTHUB_DEVICE_KEY",
    max_rewrite_bytes: MaxRewriteBytes = MAX_REWRITE_BYTES,
) -> None:
    """List every AWS IoT touch point by file and line, with a verdict for each."""
    if fmt not in _RENDER:
        raise typer.BadParameter("--format must be json, md or html")
    options = _options(
        "scan.azure-devices.net", device_id_from, auth, sas_key_from, max_rewrite_bytes
    )
    report = scan(path, options)
    text = _RENDER[fmt](report)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@firmware_app.command("patch")
def patch_cmd(
    path: Repo,
    hub: Annotated[str, typer.Option(help="IoT Hub host name, e.g. myhub.azure-devices.net.")],
    device_id_from: Annotated[
        str,
        typer.Option(help="Device id source: client-id (the code's own), env:NAME or literal:ID."),
    ] = "client-id",
    apply: Annotated[bool, typer.Option("--apply", help="Write the changes.")] = False,
    package: Annotated[
        Path | None,
        typer.Option("--package", help="Also write the patched program as an OTA tar.gz here."),
    ] = None,
    package_url: Annotated[
        str | None, typer.Option(help="URL the OTA artifact will be served from.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the JSON report after patching here.")
    ] = None,
    auth: Auth = "x509",
    sas_key_from: SasKeyFrom = "env:IOTHUB_DEVICE_KEY",
    max_rewrite_bytes: MaxRewriteBytes = MAX_REWRITE_BYTES,
) -> None:
    """Print a unified diff moving the repository to IoT Hub, or apply it with --apply."""
    options = _options(hub, device_id_from, auth, sas_key_from, max_rewrite_bytes)
    outcome = patch(path, options, apply=apply)
    if report is not None:
        report.write_text(to_json(outcome.report), encoding="utf-8")
    if package is not None:
        artifact = build_package(path, outcome.data, package, url=package_url)
        typer.echo(json.dumps(artifact), err=True)
    if not apply:
        typer.echo(outcome.diff, nl=False)
    counts = outcome.report.counts()
    typer.echo(
        f"{len(outcome.changed)} files {'patched' if apply else 'to patch'}, "
        f"{counts['needs_human']} touch points need a human",
        err=True,
    )
