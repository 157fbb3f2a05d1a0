"""Wiring: the configuration in; an open repository, a dispatcher and its delivery out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.broadcaster import Broadcaster
from bot.config import Config, with_secret_key
from bot.delivery import Delivery
from bot.letter_files import LetterFiles
from bot.links import LetterLinks
from bot.pacing import Timer
from bot.provision_http import HttpProvisioner
from bot.retention import RetentionJob
from bot.sms import SmsSender
from handlers.dispatch import Dispatcher, SmsGateway, utc_now
from handlers.provisioning import Provisioner, SchoolCodeProvisioner
from handlers.turn import CoreSettings
from storage import Crypto, Repository, UploadStore


@dataclass
class App:
    config: Config
    repo: Repository
    dispatcher: Dispatcher
    files: UploadStore
    links: LetterLinks
    letters: LetterFiles  # what documents in the outbox are made from
    delivery: Delivery  # SMS registered; the caller adds its chat channels, then starts it
    broadcaster: Broadcaster  # started by the caller after the delivery
    retention: RetentionJob  # started by the caller: erases what the privacy notice says not to keep


def make_provisioner(config: Config) -> Provisioner:
    if config.provisioner == "http":
        assert config.provision_url
        return HttpProvisioner(config.provision_url, config.provision_token, config.sign_in_url)
    return SchoolCodeProvisioner(config.sign_in_url)


@asynccontextmanager
async def open_app(
    config: Config, sms: SmsGateway, settings: CoreSettings | None = None, timer: Timer | None = None,
) -> AsyncIterator[App]:
    config = with_secret_key(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    crypto = Crypto(config.secret_key)
    repo = await Repository.open(config.database_path, crypto)
    settings = replace(settings or config.core_settings(), seal_key=crypto.signing_key)
    files = UploadStore(config.data_dir / "uploads", crypto)
    dispatcher = Dispatcher(repo, settings, sms, files, provisioner=make_provisioner(config))
    await dispatcher.forget_old_events()  # and then periodically (bot/cli.py)
    links = LetterLinks(settings.seal_key, timedelta(days=config.letter_link_days))
    letters = LetterFiles(repo, settings.seal_key, links, utc_now, files)
    delivery = Delivery(repo, timer)
    await delivery.open()
    sms_sender = SmsSender(sms, dispatcher)
    delivery.add_sender(sms_sender, on_refused=sms_sender.refused)
    dispatcher.on_commit = delivery.take
    broadcaster = Broadcaster(repo, delivery, settings, delivery.timer)
    retention = RetentionJob(dispatcher, delivery.timer, config.draft_retention_days)
    try:
        yield App(config, repo, dispatcher, files, links, letters, delivery, broadcaster, retention)
    finally:
        await retention.stop()
        await broadcaster.stop()
        await delivery.stop()
        await repo.close()
