"""moto in server mode, in this process, so the stand-in can hook its backends.

moto keeps its backends in process-global dictionaries: run one stand-in per process and
call `reset()` between uses.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import boto3
from moto import backends as moto_backends
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iot.models import iot_backends
from moto.iotdata.models import iotdata_backends

from bridge_sim.aws.hooks import BackendHooks
from bridge_sim.aws.moto_http import KeepAliveMotoServer

__all__ = ["DEFAULT_ACCOUNT_ID", "MotoServer"]

# moto's dispatcher lists its own package directory (about 180 stat calls) on every
# request to recognise service names; the list never changes while the process runs.
_MOTO_MODULES = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: _MOTO_MODULES


class MotoServer:
    """moto in server mode on a loopback port with hooks on the IoT backends of one region."""

    def __init__(self, *, region: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self._server = KeepAliveMotoServer(host=host, port=port)
        self.lock = threading.RLock()
        self._iot_hooks: BackendHooks | None = None
        self._data_hooks: BackendHooks | None = None

    def start(self) -> None:
        """Start serving; the backends are fresh."""
        # werkzeug logs every request at INFO; the stand-in logs what matters itself.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.reset()
        self._server.start()
        self._warm_up()

    def _warm_up(self) -> None:
        """Make moto build its per-service apps now, before anything else runs.

        moto builds a service's Flask app on its first request, and werkzeug compiles each
        URL rule with `ast.parse`; on CPython before 3.11.8 an `ast.parse` in another thread
        at the same moment can fail with "AST constructor recursion depth mismatch"
        (gh-106905), which turned a rehearsal's first requests into 500s.
        """
        common: dict[str, Any] = {
            "region_name": self.region,
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": "warm-up",
            "aws_secret_access_key": "warm-up",
        }
        boto3.client("iot", **common).list_things(maxResults=1)
        data = boto3.client("iot-data", **common)
        with contextlib.suppress(data.exceptions.ResourceNotFoundException):
            data.list_named_shadows_for_thing(thingName="warm-up")

    def serve(self, signing_name: str, app: Any) -> None:
        """Serve a service moto lacks (requests SigV4-signed for it) with a WSGI app."""
        self._server.serve(signing_name, app)

    def stop(self) -> None:
        """Stop serving and restore the backends' methods."""
        self._server.stop()
        for hooks in (self._iot_hooks, self._data_hooks):
            if hooks is not None:
                hooks.unwrap_all()

    def reset(self) -> None:
        """Forget every resource in every region (moto's state is process-wide)."""
        iot_backends.reset()
        iotdata_backends.reset()
        self._iot_hooks = self._data_hooks = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def iot(self) -> Any:
        """moto's IoTBackend for the stand-in's account and region."""
        return iot_backends[self.account_id][self.region]

    @property
    def iot_data(self) -> Any:
        """moto's IoTDataPlaneBackend for the stand-in's account and region."""
        return iotdata_backends[self.account_id][self.region]

    @property
    def iot_hooks(self) -> BackendHooks:
        if self._iot_hooks is None:
            self._iot_hooks = BackendHooks(self.iot, self.lock)
        return self._iot_hooks

    @property
    def iot_data_hooks(self) -> BackendHooks:
        if self._data_hooks is None:
            self._data_hooks = BackendHooks(self.iot_data, self.lock)
        return self._data_hooks
