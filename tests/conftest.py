from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from handlers.dispatch import Dispatcher
from handlers.turn import CoreSettings
from storage import Crypto, Repository
from tests.fakes.sms import RecordingSmsGateway
from tests.helpers import Clock, Officer

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
def settings() -> CoreSettings:
    return CoreSettings()


@pytest.fixture
def dispatcher(repo, settings, sms, clock) -> Dispatcher:
    return Dispatcher(repo, settings, sms, clock=clock)


@pytest.fixture
def officer(dispatcher, sms) -> Officer:
    return Officer(dispatcher, sms)
