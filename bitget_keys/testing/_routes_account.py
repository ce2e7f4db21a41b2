"""The master's own endpoints: server time, account info and its copy-trading key."""

from __future__ import annotations

from typing import Any

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.testing._accounts import EmulatorAccount, SubaccountCaller
from bitget_keys.testing._routes import Routes, check_rights
from bitget_keys.testing._wire import Refused, structure

__all__ = ["AccountRoutes"]


class AccountRoutes(Routes):
    """``server_time``, ``account_info`` and ``create_copy_api_key``."""

    endpoints = (ep.SERVER_TIME, ep.ACCOUNT_INFO, ep.CREATE_COPY_API_KEY)

    def server_time(self, _account: None, _params: Any, wall_ms: int) -> Any:
        """The exchange's wall clock."""
        return {"serverTime": str(wall_ms)}

    def account_info(self, account: EmulatorAccount, _params: Any, _wall_ms: int) -> Any:
        """
        Who the calling key belongs to, and whether it is a trader; a sub-account's key
        is told its sub-account and master (40014 once it has no rights left).
        """
        if isinstance(account, SubaccountCaller):
            check_rights(account)
            return {
                "userId": account.uid,
                "inviterId": None,
                "ips": ",".join(account.ip_list),
                "authorities": list(account.permissions),
                "parentId": account.master_uid,
                "traderType": "",
            }
        return {
            "userId": account.uid,
            "inviterId": None,
            "ips": "",
            "authorities": ["readonly", "trade"],
            "parentId": 0,
            "traderType": "trader" if account.copy_trader else "",
        }

    def create_copy_api_key(self, account: EmulatorAccount, payload: Any, _wall_ms: int) -> Any:
        """A trader of the new copy model gets one copy-trading key, once."""
        request = structure(payload, m.CreateCopyAPIKeyRequest)
        if account.copy_trader is None:
            raise Refused("40732", "Not currently a trader")
        if account.copy_trader != "new":
            raise Refused("40099", "This interface is only applicable to the new Copy model")
        if account.uid in self.store.copy_keys:
            raise Refused("40099", "You have already created a Copy API Key.")
        key = self.store.new_key(
            "copy", ["copytrading_trade", "contract_trade"], [], request.passphrase.reveal()
        )
        self.store.copy_keys[account.uid] = key
        return [{"apikey": key.api_key, "secret": key.secret_key, "permissions": key.permissions}]
