"""The data folder: made owner-only, shared by the bot and the admin commands under a lock, and
the secret key file in it.

The secret key is KIDDIARY_SECRET_KEY (older ones in KIDDIARY_OLD_SECRET_KEYS after a rotation),
or else `DATA_DIR/secret.key`: one key a line, the current one first. That file is made on the
very first start only: never when a database is already there (its data is under a key that a
new one cannot read), and never twice when two processes start together (the key is written to a
temporary file and linked into place; the process that loses the race reads the winner's key).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from bot.config import MIN_SECRET_LENGTH, SECRET_FILE, Config, ConfigError

LOCK_FILE = "kiddiary.lock"


def prepare(config: Config) -> None:
    """The data folder exists and only its owner can enter it."""
    folder = config.data_dir
    if folder.exists() and not folder.is_dir():
        raise ConfigError("KIDDIARY_DATA_DIR", f"{folder} is a file, not a folder")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077 and folder.stat().st_uid == os.geteuid():
            folder.chmod(0o700)  # one made by an older version, or by hand
    except OSError as e:
        raise ConfigError("KIDDIARY_DATA_DIR", f"cannot use {folder}: {e.strerror or e}") from None


@contextlib.contextmanager
def lock(config: Config, exclusive: bool = False) -> Iterator[None]:
    """Every command holds the data folder shared (the bot, stats and export run side by side);
    `rotate-key` holds it alone. Refused at once, in one line, when the other kind holds it."""
    path = config.data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise ConfigError("KIDDIARY_DATA_DIR", f"cannot use {config.data_dir}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            if exclusive:
                raise ConfigError("KIDDIARY_DATA_DIR", f"{config.data_dir} is in use (the bot or another command "
                                  "is running): stop it first") from None
            raise ConfigError("KIDDIARY_DATA_DIR", f"a key rotation is running on {config.data_dir}: wait for "
                              "`kiddiary-bot rotate-key` to finish") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def with_keys(config: Config) -> Config:
    """The configuration with its secret keys: the configured ones, or those of the key file,
    made on the first start (see the module's docstring)."""
    if config.secret_key:
        for key in (config.secret_key, *config.old_secret_keys):
            if len(key) < MIN_SECRET_LENGTH:
                name = "KIDDIARY_SECRET_KEY" if key == config.secret_key else "KIDDIARY_OLD_SECRET_KEYS"
                raise ConfigError(name, f"each key must be at least {MIN_SECRET_LENGTH} characters")
        return config
    path = config.data_dir / SECRET_FILE
    # The database is looked for first: it is only ever made after the key file, so when it is
    # there the key file is too, unless it was lost (and then a new key would be a new mistake).
    has_data = config.database_path.exists()
    if not path.exists():
        if has_data:
            raise ConfigError("KIDDIARY_SECRET_KEY", f"not set, and {path} is missing although {config.database_path}"
                              " holds data encrypted under it: restore the key (from a backup, or set the variable "
                              "as it was); a new key could not read that data")
        _make_key_file(path)
    keys = read_key_file(path)
    return replace(config, secret_key=keys[0], old_secret_keys=tuple(keys[1:]), keys_in_file=True)


def read_key_file(path: Path) -> list[str]:
    try:
        keys = [line.strip() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("KIDDIARY_SECRET_KEY", f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not keys or any(len(k) < MIN_SECRET_LENGTH for k in keys):
        raise ConfigError("KIDDIARY_SECRET_KEY", f"{path} is damaged (a key shorter than {MIN_SECRET_LENGTH} "
                          "characters): restore it from a backup")
    return keys


def new_key() -> str:
    return secrets.token_urlsafe(48)


def _make_key_file(path: Path) -> None:
    """Write a new key beside `path` and link it into place; if another process linked its key
    first, keep that one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mode 600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new_key() + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # lost the race: the winner's key is the key
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    _sync_folder(path.parent)


def replace_key_file(path: Path, keys: list[str]) -> None:
    """Write `keys` (current first) as the key file, all at once (rotate-key: the new key in front)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("".join(k + "\n" for k in keys))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
