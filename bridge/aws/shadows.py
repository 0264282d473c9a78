"""`ShadowWriter`: merge updates of AWS shadows through the shadow REST API (iot-data).

The REST answer carries the shadow's new version, which the reverse path remembers so that
the mirror's echo of its own write can be told apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from bridge.aws.clients import AwsApi
from bridge.errors import Rejected

__all__ = ["ShadowWriter"]

# Answers that the same request will meet again (too large, malformed, not allowed).
_REFUSED = {"InvalidRequestException", "RequestEntityTooLargeException", "ConflictException"}


class ShadowWriter:
    """Writes one section (desired or reported) of a classic or named shadow."""

    def __init__(self, data: AwsApi) -> None:
        self._data = data

    async def update(
        self, thing: str, shadow: str | None, section: str, state: Mapping[str, Any] | None
    ) -> int:
        """Merge `state` into the shadow's `section` (None clears it); return the new version.

        Raises `Rejected` when AWS refuses the document itself.
        """
        kwargs: dict[str, Any] = {"thingName": thing}
        if shadow is not None:
            kwargs["shadowName"] = shadow
        body = {"state": {section: None if state is None else dict(state)}}
        payload = json.dumps(body, separators=(",", ":")).encode()
        try:
            answer = await self._data.call("update_thing_shadow", payload=payload, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _REFUSED:
                raise Rejected(f"AWS refused the {section} of {thing}: {exc}") from exc
            raise
        document = json.loads(await answer["payload"].read())
        return int(document.get("version", 0))
