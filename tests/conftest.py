from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from handlers.dispatch import Dispatcher
from handlers.turn import CoreSettings
from storage import Crypto, Repository, UploadStore
from tests.fakes.sms import RecordingSmsGateway
from tests.helpers import Clock, Officer, stop_delivery

SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sms() -> RecordingSmsGateway:
    return RecordingSmsGateway()


@pytest.fixture
def crypto() -> Crypto:
    return Crypto(SECRET)


@pytest.fixture
async def repo(tmp_path, crypto) -> AsyncIterator[Repository]:
    repository = await Repository.open(tmp_path / "kiddiary.sqlite3", crypto)
    yield repository
    await repository.close()


@pytest.fixture
def settings(crypto) -> CoreSettings:
    return CoreSettings(seal_key=crypto.signing_key)


@pytest.fixture
def files(tmp_path, crypto) -> UploadStore:
    return UploadStore(tmp_path / "uploads", crypto)


@pytest.fixture
async def dispatcher(repo, settings, sms, files, clock) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher(repo, settings, sms, files, clock=clock)
    yield dispatcher
    await stop_delivery(dispatcher)  # before the repository closes


@pytest.fixture
def officer(dispatcher, sms) -> Officer:
    return Officer(dispatcher, sms)
