"""The secret key against the database: checked at every start, and rotated by `rotate-key`.

The database records the check value of the key its data is under (storage/keys.py). A start
with another key is refused in one line, never "fixed" by carrying on: new data under a second
key would be unreadable with the first, and the first's data with the second. A start with a
new key while the data is still under an old one (still configured) asks for `rotate-key`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot import data_dir
from bot.config import SECRET_FILE, Config, ConfigError
from storage import Crypto, Repository, UploadStore
from storage.keys import STEPS, TABLES, Rotation

UPLOADS_PER_STEP = 20  # files re-encrypted between two records of the position


async def check_key(repo: Repository, crypto: Crypto, config: Config, rotating: bool = False) -> Rotation | None:
    """Raise ConfigError unless the configured key is the one the data is under (recording it on
    the first start); return the rotation under way, which only `rotating` accepts."""
    async with repo.transaction():
        current = await repo.keys.current()
        if current is None:  # a new database, or one from before check values were kept
            sample = await repo.keys.sample()
            under = crypto.check_value if sample is None else crypto.key_of(sample)
            if under is None:
                raise _mismatch(config, crypto, "the one the stored data is under")
            current = await repo.keys.record_first(under, datetime.now(UTC))
        rotation = await repo.keys.rotation()
    if rotation is not None:
        if not rotating:
            raise ConfigError("KIDDIARY_SECRET_KEY", "a key rotation was interrupted: run `kiddiary-bot rotate-key` "
                              "again to finish it (nothing else starts until then)")
        if rotation.to_check != crypto.check_value:
            raise ConfigError("KIDDIARY_SECRET_KEY", f"the key rotation under way is to the key with check value "
                              f"{rotation.to_check}, but the configured key's is {crypto.check_value}: configure "
                              "that key (the data is partly under it)")
        return rotation
    if current == crypto.check_value:
        return None
    if current in crypto.old_check_values:
        if rotating:
            return None
        raise ConfigError("KIDDIARY_SECRET_KEY", f"is a new key ({crypto.check_value}) and the data is still under "
                          f"the older one ({current}): run `kiddiary-bot rotate-key` to move it first")
    raise _mismatch(config, crypto, f"the database's (check value {current})")


def _mismatch(config: Config, crypto: Crypto, expected: str) -> ConfigError:
    where = f"the key in {config.data_dir / SECRET_FILE}" if config.keys_in_file else "the configured key"
    return ConfigError("KIDDIARY_SECRET_KEY", f"{where} (check value {crypto.check_value}) is not {expected}: "
                       "set the right key or restore the key file; not starting, as data under two keys could "
                       "never be read together")


async def rotate_data_folder(config: Config, report: Callable[[str], None]) -> tuple[int, str]:
    """`kiddiary-bot rotate-key`, with the data folder held alone (the bot stopped). With the
    keys in DATA_DIR/secret.key a new key is made and written in front of the old one; with
    KIDDIARY_SECRET_KEY the operator sets the new key there and the old one in
    KIDDIARY_OLD_SECRET_KEYS. Run again after any interruption, it carries on where it stopped.
    Returns the rows done and the new key's check value."""
    data_dir.prepare(config)
    with data_dir.lock(config, exclusive=True):
        config = data_dir.with_keys(config)
        for attempt in range(2):
            crypto = Crypto(config.secret_key, config.old_secret_keys)
            repo = await Repository.open(config.database_path, crypto)
            try:
                rotation = await check_key(repo, crypto, config, rotating=True)
                async with repo.transaction():
                    current = await repo.keys.current()
                if rotation is not None or current != crypto.check_value:
                    files = UploadStore(config.data_dir / "uploads", crypto)
                    return await rotate(repo, crypto, files, rotation, report), crypto.check_value
            finally:
                await repo.close()
            # The data is under the configured key: the rotation needs a new one.
            if not config.keys_in_file or attempt:
                raise ConfigError("KIDDIARY_SECRET_KEY", "is the key the data is under already: to rotate, set it "
                                  "to a new key and move the current one to KIDDIARY_OLD_SECRET_KEYS")
            path = config.data_dir / SECRET_FILE
            data_dir.replace_key_file(path, [data_dir.new_key(), config.secret_key, *config.old_secret_keys])
            report(f"a new key is the first line of {path}; the old one stays below it (letters printed and "
                   "links sent before still verify)")
            config = data_dir.with_keys(replace(config, secret_key="", old_secret_keys=()))
    raise AssertionError("unreachable")


async def rotate(repo: Repository, crypto: Crypto, files: UploadStore, rotation: Rotation | None,
                 report: Callable[[str], None]) -> int:
    """Move every encrypted value and upload to the current key and make every keyed hash again,
    from where an interrupted run stopped; return how many rows were done in all."""
    if rotation is None:
        async with repo.transaction():
            rotation = await repo.keys.start_rotation(crypto.check_value, datetime.now(UTC))
    elif rotation.done_rows or rotation.position:
        report(f"resuming the key rotation at {rotation.step} ({rotation.done_rows} rows done before)")
    start = STEPS.index(rotation.step)
    for number, step in enumerate(STEPS[start:], start):
        position = rotation.position if number == start and rotation.position else None
        following = STEPS[min(number + 1, len(STEPS) - 1)]
        if step == "finish":
            break
        if step == "uploads":
            done = await _rotate_uploads(repo, files, position, following)
            report(f"uploads: {done} files encrypted again")
        elif step == "guards":
            async with repo.transaction():
                dropped = await repo.keys.drop_stale_guards()
                await repo.keys.advance(following, "")
            report(f"wrong-code counts: {dropped} no longer reachable, dropped")
        else:
            table = next(t for t in TABLES if t.table == step)
            rows = 0
            while True:
                async with repo.transaction():
                    last, count = await repo.keys.rotate_batch(table, position)
                    await repo.keys.advance(step if last is not None else following, last or "", count)
                if last is None:
                    break
                position, rows = last, rows + count
            report(f"{step}: {rows} rows encrypted and indexed again")
    async with repo.transaction():
        final = await repo.keys.rotation()
        assert final is not None
        await repo.keys.finish_rotation(datetime.now(UTC))
    return final.done_rows


async def _rotate_uploads(repo: Repository, files: UploadStore, after: str | None, following: str) -> int:
    stored = await asyncio.to_thread(files.stored)
    todo = [name for name in stored if after is None or name > after]
    done = 0
    for start in range(0, len(todo), UPLOADS_PER_STEP):
        chunk = todo[start:start + UPLOADS_PER_STEP]
        done += sum([await asyncio.to_thread(files.rotate, name) for name in chunk])
        async with repo.transaction():
            await repo.keys.advance("uploads", chunk[-1])
    async with repo.transaction():
        await repo.keys.advance(following, "")
    return done
