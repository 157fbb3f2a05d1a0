"""Wiring: the configuration in, an open repository and a dispatcher out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.config import Config, with_secret_key
from bot.provision_http import HttpProvisioner
from handlers.dispatch import Dispatcher, SmsGateway
from handlers.provisioning import Provisioner, SchoolCodeProvisioner
from handlers.turn import CoreSettings
from storage import Crypto, Repository, UploadStore

EVENT_ID_RETENTION = timedelta(days=30)


@dataclass
class App:
    config: Config
    repo: Repository
    dispatcher: Dispatcher
    files: UploadStore


def make_provisioner(config: Config) -> Provisioner:
    if config.provisioner == "http":
        assert config.provision_url
        return HttpProvisioner(config.provision_url, config.provision_token, config.sign_in_url)
    return SchoolCodeProvisioner(config.sign_in_url)


@asynccontextmanager
async def open_app(config: Config, sms: SmsGateway, settings: CoreSettings | None = None) -> AsyncIterator[App]:
    config = with_secret_key(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    repo = await Repository.open(config.database_path, Crypto(config.secret_key))
    async with repo.transaction():  # platforms redeliver within minutes; a month of ids is ample
        await repo.forget_events_before(datetime.now(UTC) - EVENT_ID_RETENTION)
    crypto = Crypto(config.secret_key)
    settings = replace(settings or config.core_settings(), seal_key=crypto.signing_key)
    files = UploadStore(config.data_dir / "uploads", crypto)
    dispatcher = Dispatcher(repo, settings, sms, files, provisioner=make_provisioner(config))
    try:
        yield App(config, repo, dispatcher, files)
    finally:
        await repo.close()
