"""Bitget's v2 copy-trading endpoint for API keys (``/api/v2/copy/...``)."""

from __future__ import annotations

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._client.sending import SendingCore
from bitget_keys.errors import ResponseDecodeError

__all__ = ["V2CopyEndpoints"]


class V2CopyEndpoints(SendingCore):
    """The copy-trading key of a new-model copy trader."""

    __slots__ = ()

    async def create_copy_api_key(self, request: m.CreateCopyAPIKeyRequest) -> m.CopyAPIKey:
        """
        Create the copy-trading API key of a new-model copy trader. Works once, ever.

        The secret is in the result only: store it before doing anything else.

        Raises:
            CopyAPIKeyExistsError: this trader already has its copy key.
            CopyModelNotSupportedError: the trader is on the old copy model.
            TransportError: no answer; if ``maybe_sent``, the key may exist and its
                secret is lost; do not retry blindly.
        """
        rows = await self._call(ep.CREATE_COPY_API_KEY, tuple[m.CopyAPIKey, ...], body=request)
        if not rows:
            raise ResponseDecodeError(ep.CREATE_COPY_API_KEY.path, ("data: empty list",))
        return rows[0]
