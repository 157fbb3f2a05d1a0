"""A provisioner that asks the platform's own account service over HTTP.

POST KIDDIARY_PROVISION_URL with a bearer token (KIDDIARY_PROVISION_TOKEN) and the
registration as JSON; the service answers 200 with `{"username": …, "initial_password": …
(optional), "sign_in_url": … (optional)}`. It must be idempotent per `ref`: a retry after a
lost answer gets the same account (with a new initial password, which goes out by SMS).
Anything else is a ProvisionError, and the registration is retried later.
"""

from __future__ import annotations

import aiohttp

from handlers.provisioning import Account, ProvisionError
from storage import Registration

TIMEOUT = aiohttp.ClientTimeout(total=20)


class HttpProvisioner:
    def __init__(self, url: str, token: str | None, sign_in_url: str) -> None:
        self.url, self.token, self.sign_in_url = url, token, sign_in_url

    async def provision(self, reg: Registration) -> Account:
        body = {
            "ref": reg.ref, "affiliation": reg.affiliation, "school_code": reg.school_code,
            "school_name": reg.school_name, "province": reg.province,
            "officer": {"title": reg.officer_title, "first_name": reg.officer_first_name,
                        "last_name": reg.officer_last_name, "national_id": reg.national_id, "phone": reg.phone},
            "old_tsl_username": reg.old_tsl_username or None,
            "old_kiddiary_username": reg.old_kiddiary_username or None,
        }
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(
                self.url, json=body, headers=headers
            ) as response:
                if response.status != 200:
                    raise ProvisionError(f"HTTP {response.status}")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise ProvisionError(type(e).__name__) from e
        username = answer.get("username") if isinstance(answer, dict) else None
        if not isinstance(username, str) or not username:
            raise ProvisionError("no username in the answer")
        return Account(username, answer.get("initial_password"), answer.get("sign_in_url") or self.sign_in_url)
