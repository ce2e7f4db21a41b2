"""
Answers that say "failed" under Bitget's success code.

A few endpoints report their outcome in the data as well as in the envelope's code:
modify-virtual-subaccount answers ``{"result": "success"}`` or ``{"result": "failure"}``,
the v2 broker key delete the string ``"success"``. The code alone would let a refused
change pass for a done one, so anything but the documented success is raised as an
`APIError` (with no Bitget code: the envelope's was the success one).
"""

from __future__ import annotations

from bitget_keys import _endpoints as ep
from bitget_keys.errors import APIError

__all__ = ["require_success"]

#: What Bitget answers, in the data, for a change it carried out.
_SUCCESS = "success"
#: The most of an unexpected answer an error message repeats.
_SHOWN = 40


def require_success(endpoint: ep.Endpoint, outcome: object) -> None:
    """
    Raise unless ``outcome`` (the answer's ``result``, or the whole data) is ``success``.

    Raises:
        APIError: Bitget answered anything else; the change is not known to be made.
    """
    if outcome == _SUCCESS:
        return
    shown = repr(outcome)
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + "…"
    message = (
        f"Bitget answered {shown} instead of 'success' under a success code: "
        "the change is not known to be made; read the account back before trying again"
    )
    raise APIError(http_status=200, code=None, message=message, endpoint=endpoint.path)
