"""The AWS IoT MQTT data endpoint stand-in: mosquitto with mutual TLS and the `iot_authz` plugin.

mosquitto 2.0 reloads neither its CA store nor a CRL without a restart, so trust and
revocation are split: the TLS handshake trusts an OpenSSL hashed directory (`capath`), which
OpenSSL reads lazily at handshake time, so anchors added later are found; the plugin then
allows exactly the ACTIVE certificates of the registry and enforces their IoT policies.

A second listener on loopback has no TLS and no restrictions: it is for the stand-in's own
glue and for tools. Presence events come only from TLS clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Self

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from OpenSSL import crypto

from bridge.logging import get_logger
from bridge.x509 import der_sha256
from bridge_sim.aws.authz import compile_table, write_table
from bridge_sim.errors import SimulatorError
from bridge_sim.pdeathsig import spawn
from bridge_sim.ports import free_port

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from bridge_sim.aws.authz import Principal
    from bridge_sim.pki import IssuedCertificate

__all__ = ["MosquittoBroker", "build_plugin"]

log = get_logger("sim.aws.broker")

PLUGIN_SOURCE = Path(__file__).parent / "mosquitto_plugin" / "iot_authz.c"
_CFLAGS = ("-O2", "-Wall", "-Wextra", "-shared", "-fPIC")
_PACKAGES_HINT = "install the Debian packages gcc, mosquitto-dev and libssl-dev (make system)"
_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 10.0


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iot-bridge"


def build_plugin(cache_dir: Path | None = None) -> Path:
    """Compile `iot_authz.c` unless a build of this exact source is cached; return the .so."""
    source = PLUGIN_SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(_CFLAGS).encode()).hexdigest()[:16]
    directory = cache_dir or _cache_dir()
    target = directory / f"iot_authz-{digest}.so"
    if target.exists():
        return target
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise SimulatorError(f"no C compiler to build the mosquitto plugin: {_PACKAGES_HINT}")
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".iot_authz-", suffix=".so")
    os.close(fd)
    build = subprocess.run(  # noqa: S603 - fixed arguments, compiler from PATH
        [compiler, *_CFLAGS, "-o", temp, str(PLUGIN_SOURCE), "-lcrypto"],
        capture_output=True,
        text=True,
        check=False,
    )
    output = build.stdout + build.stderr
    if build.returncode != 0:
        Path(temp).unlink(missing_ok=True)
        missing = "mosquitto_broker.h" in output or "mosquitto_plugin.h" in output
        missing = missing or "openssl/" in output or "lcrypto" in output
        hint = f"; {_PACKAGES_HINT}" if missing else ""
        raise SimulatorError(f"building the mosquitto plugin failed{hint}:\n{output[-2000:]}")
    # Concurrent builders each rename a complete file into place; the last one wins.
    Path(temp).replace(target)
    return target


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class _TrustAnchors:
    """An OpenSSL hashed directory (`<subject hash>.<n>`) that only ever grows."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._known: set[str] | None = None
        self._lock = threading.Lock()

    def add(self, pems: Sequence[str]) -> None:
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self._known is None:
                self._known = {
                    self._fingerprint(p.read_text()) for p in self.directory.glob("*.[0-9]*")
                }
            for pem in pems:
                fingerprint = self._fingerprint(pem)
                if fingerprint not in self._known:
                    self._install(pem)
                    self._known.add(fingerprint)

    @staticmethod
    def _fingerprint(pem: str) -> str:
        return der_sha256(pem)

    def _install(self, pem: str) -> None:
        x509_cert = crypto.load_certificate(crypto.FILETYPE_PEM, pem.encode())
        subject_hash = x509_cert.subject_name_hash()
        index = 0
        # Subjects collide (two self-signed certs for one thing name): OpenSSL tries .0, .1, ...
        while (self.directory / f"{subject_hash:08x}.{index}").exists():
            index += 1
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".anchor-")
        with os.fdopen(fd, "w") as handle:
            handle.write(pem)
        Path(temp).chmod(0o644)
        Path(temp).replace(self.directory / f"{subject_hash:08x}.{index}")


@functools.lru_cache(maxsize=65536)
# Cached: set_principals sees the whole fleet on every registry change.
@functools.lru_cache(maxsize=65536)
def _is_self_signed(pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(pem.encode())
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class MosquittoBroker:
    """mosquitto with a mutual-TLS listener guarded by `iot_authz` and an open loopback one.

    The per-connection quotas of AWS IoT Core apply to certificate clients, with AWS's values
    by default; `None` switches one off (tests and rehearsals that reconnect quickly pass
    `connect_rate=None`). See the header of `iot_authz.c` for how each is answered.
    """

    def __init__(
        self,
        *,
        workdir: Path,
        server_cert: IssuedCertificate,
        trust_pems: Sequence[str],
        host: str = "127.0.0.1",
        tls_port: int = 0,
        plain_port: int = 0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        connect_rate: float | None = 1.0,
        max_subscriptions: int | None = 50,
        publish_rate: float | None = 100.0,
    ) -> None:
        quotas = {
            "connect_rate": connect_rate,
            "max_subscriptions": max_subscriptions,
            "publish_rate": publish_rate,
        }
        if any(value is not None and value <= 0 for value in quotas.values()):
            raise ValueError(f"quotas must be positive or None (off): {quotas}")
        # CONNECTs per second per client id, subscriptions and PUBLISHes per second per connection.
        self._quotas = {key: value or 0 for key, value in quotas.items()}
        self.workdir = workdir
        self._server_cert = server_cert
        self._trust_pems = tuple(trust_pems)
        self._host = host
        self._tls_port = tls_port
        self._plain_port = plain_port
        self._region = region
        self._account_id = account_id
        self._anchors = _TrustAnchors(workdir / "tls" / "anchors")
        self._table_path = workdir / "iot_authz.table"
        self._table_lock = threading.Lock()
        self._table_written = False
        self._process: asyncio.subprocess.Process | None = None
        self._plugin: Path | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def tls_port(self) -> int:
        return self._tls_port

    @property
    def plain_port(self) -> int:
        return self._plain_port

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def set_principals(self, principals: Sequence[Principal], ca_pems: Sequence[str] = ()) -> None:
        """Publish the registry's certificates and CAs; takes effect on the next connection."""
        anchors = [
            *ca_pems,
            *(p.certificate_pem for p in principals if _is_self_signed(p.certificate_pem)),
        ]
        # Anchors first: once the table allows a certificate, its handshake must succeed.
        self._anchors.add(anchors)
        # One lock around compile and write: concurrent callers land in call order.
        with self._table_lock:
            text = compile_table(principals, region=self._region, account_id=self._account_id)
            write_table(self._table_path, text)
            self._table_written = True

    async def __aenter__(self) -> Self:
        try:
            self._plugin = await asyncio.to_thread(build_plugin)
        except OSError:
            # No writable home (service users): keep the build with the broker instead.
            self._plugin = await asyncio.to_thread(build_plugin, self.workdir / "plugin")
        await asyncio.to_thread(self._prepare)
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop()

    async def restart(self, *, forget_sessions: bool = False) -> None:
        """Stop and start mosquitto on the same ports; persistent sessions survive, unless
        `forget_sessions` (as when a broker loses its state, or sessions expire)."""
        await self._stop()
        if forget_sessions:
            await asyncio.to_thread(
                (self.workdir / "data" / "mosquitto.db").unlink, missing_ok=True
            )
        await self._start()

    def _prepare(self) -> None:
        for sub in ("tls", "data"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self._server_cert.write(self.workdir / "tls", "server")
        self._anchors.add(self._trust_pems)
        with self._table_lock:
            if not self._table_written:
                write_table(
                    self._table_path,
                    compile_table([], region=self._region, account_id=self._account_id),
                )
                self._table_written = True
        if not self._tls_port:
            self._tls_port = free_port(self._host)
        if not self._plain_port:
            self._plain_port = free_port(self._host)
        (self.workdir / "mosquitto.conf").write_text(self._config())

    def _config(self) -> str:
        tls = self.workdir / "tls"
        assert self._plugin is not None
        return f"""# Written by bridge_sim.aws.broker; rewritten on every start.
# Global plugin, not per listener: mosquitto 2.0.11 sends MOSQ_EVT_TICK (needed to disconnect
# clients safely) only to global plugins. iot_authz trusts certificate-less clients, which
# only the loopback listener admits; require_certificate guards the TLS listener.
per_listener_settings false
allow_anonymous true
plugin {self._plugin}
plugin_opt_table {self._table_path}
plugin_opt_connect_rate {self._quotas["connect_rate"]}
plugin_opt_max_subscriptions {self._quotas["max_subscriptions"]}
plugin_opt_publish_rate {self._quotas["publish_rate"]}
user {pwd.getpwuid(os.geteuid()).pw_name}
persistence true
persistence_location {self.workdir / "data"}/
autosave_interval 30
log_dest file {self.log_path}
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S
connection_messages true
# AWS queues up to the session limits; mosquitto's default of 1000 would drop messages.
max_queued_messages 100000
# AWS IoT allows 100 unacknowledged QoS 1 messages per connection.
max_inflight_messages 100
set_tcp_nodelay true
# AWS IoT's MQTT payload limit is 128 KiB; bigger packets (with 1 KiB for the topic and
# headers) close the connection, and MQTT 5 clients learn the limit from CONNACK.
max_packet_size 132096

listener {self._tls_port} {self._host}
capath {tls / "anchors"}
certfile {tls / "server.crt"}
keyfile {tls / "server.key"}
tls_version tlsv1.2
require_certificate true
use_identity_as_username false

listener {self._plain_port} {self._host}
"""

    async def _start(self) -> None:
        if self._process is not None:
            raise SimulatorError("mosquitto is already running")
        mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        if mosquitto is None:
            raise SimulatorError("mosquitto is not installed: install the Debian package mosquitto")
        output = await asyncio.to_thread((self.workdir / "mosquitto.out").open, "ab")
        try:
            self._process = await spawn(
                mosquitto,
                "-c",
                str(self.workdir / "mosquitto.conf"),
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            output.close()
        try:
            await self._wait_ready()
        except BaseException:
            await self._stop()
            raise
        log.info(
            "sim.aws.mosquitto_started",
            tls_port=self._tls_port,
            plain_port=self._plain_port,
            pid=self._process.pid,
        )

    async def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT_S
        pending = {self._tls_port, self._plain_port}
        while pending:
            if self._process.returncode is not None:
                raise SimulatorError(
                    f"mosquitto exited with {self._process.returncode}\n{self._diagnostics()}"
                )
            if asyncio.get_running_loop().time() > deadline:
                raise SimulatorError(
                    f"mosquitto did not open ports {sorted(pending)}\n{self._diagnostics()}"
                )
            for port in sorted(pending):
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection(self._host, port)
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
                    pending.discard(port)
            if pending:
                await asyncio.sleep(0.05)

    def _diagnostics(self) -> str:
        return (
            f"--- {self.workdir / 'mosquitto.out'}\n{_tail(self.workdir / 'mosquitto.out')}\n"
            f"--- {self.log_path}\n{_tail(self.log_path)}"
        )

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("sim.aws.mosquitto_killed", pid=process.pid)
            process.kill()
            await process.wait()
