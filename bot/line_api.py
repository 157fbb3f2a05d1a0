"""line-bot-sdk's API clients, with the environment read once.

The SDK's aiohttp session trusts the environment, and aiohttp then looks up the proxy variables
and `~/.netrc` for every request, each time in a worker thread: two thread trips per message
sent, about a seventh of the event loop's time under load (py-spy, benchmarks/webhook.py).
Here the proxy for the API's host is looked up once, when the client is made, and the session
no longer reads the environment. An operator behind a proxy sets HTTPS_PROXY (and NO_PROXY) as
usual; a change takes effect at the next start, like every other setting.
"""

from __future__ import annotations

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration, Message
from yarl import URL


def proxy_for(host: str) -> tuple[str | None, dict[str, str] | None]:
    """The proxy the environment names for `host` (an API base URL), and its credentials as a
    Proxy-Authorization header; (None, None) when it is reached directly."""
    try:
        proxy, auth = get_env_proxy_for_url(URL(host))
    except LookupError:
        return None, None
    return str(proxy), ({"Proxy-Authorization": auth.encode()} if auth is not None else None)


async def api_client(host: str, access_token: str) -> AsyncApiClient:
    """An AsyncApiClient for `host` whose session does not consult the environment per request.
    Call inside the running loop (aiohttp's sessions belong to one)."""
    configuration = Configuration(host=host, access_token=access_token)
    configuration.proxy, configuration.proxy_headers = proxy_for(host)
    client = AsyncApiClient(configuration)
    rest = client.rest_client
    trusting: aiohttp.ClientSession = rest.pool_manager
    connector = trusting.connector
    trusting.detach()  # keeps the connector (its TLS context and pool size) for the new session
    await trusting.close()
    rest.pool_manager = aiohttp.ClientSession(connector=connector, trust_env=False)
    return client


MULTICAST_ERRORS = {"200": "object", "400": "ErrorResponse", "403": "ErrorResponse", "409": "ErrorResponse",
                    "429": "ErrorResponse"}


async def multicast(api: AsyncMessagingApi, to: list[str], messages: list[Message], retry_key: str) -> None:
    """`AsyncMessagingApi.multicast` without pydantic validating and copying the 500 user ids on
    every call: that took two thirds of the event loop in a broadcast (profiled with py-spy).
    The same endpoint, headers, body and `ApiException`s, through the SDK's own ApiClient; the
    messages are the SDK's models, validated when they were made."""
    client = api.api_client
    await client.call_api(
        "/v2/bot/message/multicast", "POST", {}, [],
        {"X-Line-Retry-Key": retry_key, "Accept": "application/json", "Content-Type": "application/json"},
        body={"to": to, "messages": [message.to_dict() for message in messages]},
        post_params=[], files={}, response_types_map=MULTICAST_ERRORS, auth_settings=["Bearer"],
        _return_http_data_only=True, _preload_content=True, collection_formats={},
    )
