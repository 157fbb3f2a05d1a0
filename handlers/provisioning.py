"""New accounts for approved registrations, behind one small interface.

The default provisioner makes the username from the school code and a one-time initial
password; the password goes to the officer by SMS only, and only its scrypt hash is kept
(exported with the approved registrations for the new platform to accept it once). Another
provisioner (bot/provision_http.py) asks the platform's own service over HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
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


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (hex): what the new platform checks the initial password against."""
    salt = secrets.token_bytes(16)
    n, r, p = 2**14, 8, 1
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(computed.hex(), digest)


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
