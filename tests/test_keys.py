"""The secret key against the database (a check value refuses another key; a lost key file is
never replaced while data exists) and `rotate-key` over every encrypted value, keyed hash and
upload, including a rotation killed with SIGKILL and run again."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import open_app
from bot.config import Config, ConfigError, load_config
from bot.keys import rotate_data_folder
from handlers.dispatch import SMS
from handlers.letter_seal import Seal, seal, unseal
from handlers.messages import Sms, encode_sms
from storage import Crypto, OutboxRow, PhoneGuard, Repository, UploadStore
from tests.fakes.sms import RecordingSmsGateway
from tests.helpers import NATIONAL_ID, PHONE
from tests.test_cli import SCRIPT, clean_env

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
KEY_A = "first-key-of-the-test-0123456789-abcdefghij"
KEY_B = "second-key-of-the-test-0123456789-abcdefghij"
PHOTO = os.urandom(50_000)


def configured(tmp_path: Path, **env: str) -> Config:
    return load_config({"KIDDIARY_DATA_DIR": str(tmp_path / "data"), **env}, dotenv=None)


async def fill(config: Config, count: int = 3, uploads: int = 2, size: int = 50_000) -> str:
    """Registrations with every personal field, a code, a wrong-code count, an SMS waiting, an
    event in the inbox, and uploads; returns one upload's path."""
    async with open_app(config, RecordingSmsGateway()) as app:
        async with app.repo.transaction():
            for i in range(count):
                reg = await app.repo.create_registration("telegram", str(1000 + i), "submitted", NOW)
                await app.repo.save_registration(replace(
                    reg, school_code=f"10545{i:05d}", officer_title="นางสาว", officer_first_name=f"สมศรี{i}",
                    officer_last_name="ใจดี", national_id=NATIONAL_ID, phone=PHONE if i == 0 else f"+6681{i:07d}",
                ), NOW)
            await app.repo.otp.create(PHONE, "JBSWY3DPEHPK3PXP", "telegram", "1000", NOW, NOW + timedelta(minutes=5))
            await app.repo.otp.save_guard(PhoneGuard(PHONE, 2, None))
            await app.repo.outbox.add([OutboxRow(SMS, app.repo.phone_ref(PHONE), 0, "b", encode_sms(Sms(PHONE, "hi")))],
                                      NOW)
            await app.repo.events.keep("line", "event-1", '{"text": "1-2345-45678-78-1"}', NOW)
        paths = [await asyncio.to_thread(app.files.put, upload(j, size)) for j in range(uploads)]
    return paths[0] if paths else ""


def more_registrations(data: Path, secret: str, count: int) -> None:
    """`count` registrations more, encrypted as the repository stores them, written in one go."""
    crypto = Crypto(secret)
    rows = [(f"KD-BULK-{i:04d}", "line", f"U{i:032x}", "submitted", crypto.encrypt(f"ชื่อ{i}"), crypto.encrypt("นามสกุล"),
             crypto.encrypt(NATIONAL_ID), crypto.index("national_id", NATIONAL_ID), crypto.encrypt(f"+6689{i:07d}"),
             crypto.index("phone", f"+6689{i:07d}"), NOW.isoformat(), NOW.isoformat()) for i in range(count)]
    with sqlite3.connect(data / "kiddiary.sqlite3") as db:
        db.executemany(
            """INSERT INTO registrations (ref, channel, user_id, status, officer_first_name_enc, officer_last_name_enc,
                   national_id_enc, national_id_index, phone_enc, phone_index, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)


def upload(number: int, size: int = 50_000) -> bytes:
    return (PHOTO * (size // len(PHOTO) + 1))[: size - 1] + bytes([number])


def assert_all_under(data: Path, secret: str, old: str) -> None:
    """Every encrypted column of every table (found from the schema, not from the product's
    list) and every upload reads with `secret` alone and not with `old`; the keyed hashes are
    `secret`'s."""
    only, former = Crypto(secret), Crypto(old)
    db = sqlite3.connect(data / "kiddiary.sqlite3")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    checked = 0
    for table in tables:
        for column in [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1].endswith("_enc")]:
            for (token,) in db.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
                assert only.key_of(token) == only.check_value and former.key_of(token) is None, (table, column)
                checked += 1
    assert checked >= 3 * 4 + 2 + 2  # registrations, the code, the SMS and the event
    phones = [only.decrypt(r[0]) for r in db.execute("SELECT phone_enc FROM registrations ORDER BY id")]
    assert [r[0] for r in db.execute("SELECT phone_index FROM registrations ORDER BY id")] == [only.index("phone", p)
                                                                                     for p in phones]
    assert {r[0] for r in db.execute("SELECT national_id_index FROM registrations")} == {
        only.index("national_id", NATIONAL_ID)}
    assert [r[0] for r in db.execute("SELECT phone_index FROM otp_challenges")] == [only.index("phone", PHONE)]
    assert [r[0] for r in db.execute("SELECT phone_index FROM otp_phone_guards")] == [only.index("phone", PHONE)]
    assert [r[0] for r in db.execute("SELECT chat_id FROM outbox WHERE channel = 'sms'")] == [
        only.index("phone", PHONE)[:24]]
    db.close()
    store = UploadStore(data / "uploads", only)
    assert store.stored()
    for name in store.stored():
        token = (data / "uploads" / name).read_bytes()
        assert only.key_of(token) == only.check_value and former.key_of(token) is None, name


async def test_the_first_start_records_the_key_and_another_key_is_refused(tmp_path):
    config = configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_A)
    await fill(config)
    before = (tmp_path / "data" / "kiddiary.sqlite3").read_bytes()
    with pytest.raises(ConfigError) as error:
        async with open_app(configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_B), RecordingSmsGateway()):
            pass
    assert error.value.variable == "KIDDIARY_SECRET_KEY" and Crypto(KEY_A).check_value in str(error.value)
    assert (tmp_path / "data" / "kiddiary.sqlite3").read_bytes() == before  # nothing written under key B
    async with open_app(config, RecordingSmsGateway()) as app, app.repo.transaction():
        assert (await app.repo.get_registration(1)).national_id == NATIONAL_ID  # type: ignore[union-attr]


async def test_a_lost_key_file_is_never_replaced_while_data_exists(tmp_path):
    config = configured(tmp_path)  # the key is generated into data/secret.key
    await fill(config, uploads=0)
    key_file = tmp_path / "data" / "secret.key"
    key = key_file.read_text()
    key_file.unlink()
    with pytest.raises(ConfigError, match=r"secret\.key is missing although"):
        async with open_app(config, RecordingSmsGateway()):
            pass
    assert not key_file.exists()
    key_file.write_text("x" * 50 + "\n")  # a different key put in its place
    with pytest.raises(ConfigError, match="is not the database's"):
        async with open_app(config, RecordingSmsGateway()):
            pass
    key_file.write_text(key)
    async with open_app(config, RecordingSmsGateway()) as app, app.repo.transaction():
        assert (await app.repo.get_registration(1)).phone == PHONE  # type: ignore[union-attr]


async def test_a_database_from_before_check_values_is_checked_by_its_data(tmp_path):
    config = configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_A)
    await fill(config, uploads=0)
    db = sqlite3.connect(tmp_path / "data" / "kiddiary.sqlite3")
    db.execute("DELETE FROM key_versions")  # as an older version left it
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="is not the one the stored data is under"):
        async with open_app(configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_B), RecordingSmsGateway()):
            pass
    async with open_app(config, RecordingSmsGateway()) as app, app.repo.transaction():
        assert await app.repo.keys.current() == Crypto(KEY_A).check_value


async def test_rotation_with_keys_in_the_environment_round_trip(tmp_path):
    old = configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_A)
    path = await fill(old)
    letter_seal = seal(Crypto(KEY_A).signing_key, "KD-AAAA-BBBB", 1)  # a letter printed before the rotation
    new = configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_B, KIDDIARY_OLD_SECRET_KEYS=KEY_A)
    with pytest.raises(ConfigError, match="run `kiddiary-bot rotate-key`"):  # the bot does not start half-way
        async with open_app(new, RecordingSmsGateway()):
            pass
    with pytest.raises(ConfigError, match="is the key the data is under already"):
        await rotate_data_folder(old, print)
    rows, check = await rotate_data_folder(new, print)
    assert rows >= 5 and check == Crypto(KEY_B).check_value
    assert_all_under(tmp_path / "data", KEY_B, KEY_A)

    async with open_app(new, RecordingSmsGateway()) as app:
        async with app.repo.transaction():
            [found] = await app.repo.search.by_phone(PHONE)  # the phone's index is the new key's
            assert (found.officer_first_name, found.national_id) == ("สมศรี0", NATIONAL_ID)
            assert [r.id for r in await app.repo.search.by_name({"สมศรี0"})] == [found.id]  # the name words' too
            assert len(await app.repo.others_with_same_person(found)) == 2  # the national ID's index too
            assert (await app.repo.otp.guard(PHONE)).failures == 2  # the wrong-code count moved
        assert await asyncio.to_thread(app.files.get, path) == upload(0)
        assert unseal(app.dispatcher.settings.seal_key, letter_seal, app.dispatcher.settings.old_seal_keys) == Seal(
            "KD-AAAA-BBBB", 1)
    # Without the old key the data is still read: it is all under the new one.
    async with open_app(configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_B), RecordingSmsGateway()) as app, \
            app.repo.transaction():
        assert (await app.repo.get_registration(1)).phone == PHONE  # type: ignore[union-attr]


async def test_rotate_key_killed_mid_way_then_run_again_finishes(tmp_path):
    config = configured(tmp_path)  # keys in data/secret.key: rotate-key makes the new one
    await fill(config, uploads=20, size=200_000)
    data = tmp_path / "data"
    old_key = (data / "secret.key").read_text().strip()
    more_registrations(data, old_key, 800)
    env = clean_env(KIDDIARY_DATA_DIR=str(data))
    proc = subprocess.Popen([str(SCRIPT), "rotate-key"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with sqlite3.connect(data / "kiddiary.sqlite3") as db:
            row = db.execute("SELECT done_rows FROM key_rotation").fetchone()
        if row is not None and row[0] >= 200:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()  # type: ignore[union-attr]

    new_key = (data / "secret.key").read_text().split()[0]
    with sqlite3.connect(data / "kiddiary.sqlite3") as db:
        tokens = [r[0] for r in db.execute("SELECT phone_enc FROM registrations")]
    under = {Crypto(new_key, [old_key]).key_of(t) for t in tokens}
    assert under == {Crypto(new_key).check_value, Crypto(old_key).check_value}  # really half-way
    with pytest.raises(ConfigError, match="interrupted"):
        async with open_app(config, RecordingSmsGateway()):
            pass

    again = await asyncio.to_thread(subprocess.run, [str(SCRIPT), "rotate-key"], env=env, capture_output=True,
                                    text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr
    assert "resuming the key rotation at registrations" in again.stderr
    assert (data / "secret.key").read_text().split() == [new_key, old_key]
    assert_all_under(data, new_key, old_key)
    async with open_app(config, RecordingSmsGateway()) as app, app.repo.transaction():
        assert len(await app.repo.registrations_with_status("submitted")) == 803


async def test_the_rotation_refuses_to_run_beside_the_bot(tmp_path):
    config = configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_A)
    await fill(config, count=1, uploads=0)
    new = configured(tmp_path, KIDDIARY_SECRET_KEY=KEY_B, KIDDIARY_OLD_SECRET_KEYS=KEY_A)
    async with open_app(config, RecordingSmsGateway()):  # the bot (or stats, export…) running
        with pytest.raises(ConfigError, match="is in use"):
            await rotate_data_folder(new, print)
    repo = await Repository.open(tmp_path / "data" / "kiddiary.sqlite3", Crypto(KEY_A))
    async with repo.transaction():
        assert await repo.keys.rotation() is None and await repo.keys.current() == Crypto(KEY_A).check_value
    await repo.close()
