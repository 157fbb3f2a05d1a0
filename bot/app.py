"""Wiring: the configuration in; an open repository, a dispatcher and its delivery out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

from bot import data_dir
from bot.broadcaster import Broadcaster
from bot.config import Config
from bot.delivery import Delivery
from bot.keys import check_key
from bot.letter_files import LetterFiles
from bot.links import LetterLinks
from bot.pacing import Timer
from bot.provision_http import HttpProvisioner
from bot.retention import RetentionJob
from bot.sms import SmsSender
from handlers.dispatch import Dispatcher, utc_now
from handlers.provisioning import Provisioner, SchoolCodeProvisioner
from handlers.sms_gateway import SmsGateway
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
    """Everything a command needs, checked before anything is done: the data folder (owner-only,
    held shared against `rotate-key`), the key against the database (bot/keys.py). Whatever
    fails after the database is open closes it: its thread would keep the process alive."""
    data_dir.prepare(config)
    with data_dir.lock(config):
        config = data_dir.with_keys(config)
        crypto = Crypto(config.secret_key, config.old_secret_keys)
        repo = await Repository.open(config.database_path, crypto)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(repo.close)
            await check_key(repo, crypto, config)
            settings = replace(settings or config.core_settings(), seal_key=crypto.signing_key,
                               old_seal_keys=crypto.signing_keys[1:])
            files = UploadStore(config.data_dir / "uploads", crypto)
            dispatcher = Dispatcher(repo, settings, sms, files, provisioner=make_provisioner(config))
            await dispatcher.forget_old_events()  # and then periodically (bot/cli.py)
            links = LetterLinks(settings.seal_key, timedelta(days=config.letter_link_days), settings.old_seal_keys)
            letters = LetterFiles(repo, settings.seal_key, links, utc_now, files)
            delivery = Delivery(repo, timer)
            stack.push_async_callback(delivery.stop)
            await delivery.open()
            sms_sender = SmsSender(sms, dispatcher)
            delivery.add_sender(sms_sender, on_refused=sms_sender.refused)
            dispatcher.on_commit = delivery.take
            broadcaster = Broadcaster(repo, delivery, settings, delivery.timer)
            stack.push_async_callback(broadcaster.stop)
            retention = RetentionJob(dispatcher, delivery.timer, config.draft_retention_days)
            stack.push_async_callback(retention.stop)
            yield App(config, repo, dispatcher, files, links, letters, delivery, broadcaster, retention)
