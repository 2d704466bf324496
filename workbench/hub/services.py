"""What the hub's own services (the job gateway, the pipelines service) share: asking the hub about a user."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


async def hub_user_model(hub_auth: Any, name: str, refuse: Callable[[int, str], Exception]) -> dict[str, Any]:
    """User ``name``'s model from the hub's REST API (groups, servers), asked with the service's own token.

    Parameters
    ----------
    hub_auth : jupyterhub.services.auth.HubAuth
        The service's client of the hub (its ``api_url`` and ``api_token``).
    name : str
        The hub user; escaped into the URL, so no name reaches another path of the API.
    refuse : callable
        Builds the service's refusal from a status and a reason; raised (502) when the hub does not answer.

    Returns
    -------
    dict
        The hub's user model.
    """
    url = f"{hub_auth.api_url.rstrip('/')}/users/{quote(name, safe='')}"
    request = HTTPRequest(url, headers={"Authorization": f"token {hub_auth.api_token}"})
    try:
        resp = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as exc:
        raise refuse(502, f"the hub did not describe user {name!r} ({exc.code})") from None
    return json.loads(resp.body)
