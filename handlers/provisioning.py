"""New accounts for approved registrations, behind one small interface.

The default provisioner makes the username from the school code and a one-time initial
password; the password goes to the officer by SMS only and is never stored. Another
provisioner (bot/provision_http.py) asks the platform's own service over HTTP.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol

from storage import Registration

# No 0/O, 1/l/I: the officer types this from an SMS.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Account:
    username: str
    initial_password: str | None = field(default=None, repr=False)  # SMS only; never stored or logged
    sign_in_url: str = ""


class ProvisionError(Exception):
    """The account could not be made now; the registration stays approved and it is retried."""


class Provisioner(Protocol):
    async def provision(self, reg: Registration) -> Account: ...


class SchoolCodeProvisioner:
    def __init__(self, sign_in_url: str) -> None:
        self.sign_in_url = sign_in_url

    async def provision(self, reg: Registration) -> Account:
        if not reg.school_code:
            raise ProvisionError("no school code")
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(10))
        return Account(f"sch{reg.school_code}", password, self.sign_in_url)
