"""Uploaded files (signed letters), encrypted at rest under DATA_DIR/uploads.

Files are named by the SHA-256 of their content, so storing the same photo twice writes
one file, and a crash between writing and committing leaves at most an orphan, never a
database row without its file. Blocking: call from a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from storage.crypto import Crypto


class UploadStore:
    def __init__(self, root: Path, crypto: Crypto) -> None:
        self.root = root
        self._crypto = crypto

    def put(self, data: bytes) -> str:
        """Store `data` encrypted; return its path relative to the store."""
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{digest[:2]}/{digest}.bin"
        target = self.root / relative
        if target.exists():
            return relative
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        self._write(target, self._crypto.encrypt_bytes(data))
        return relative

    def _write(self, target: Path, token: bytes) -> None:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")  # mode 600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(token)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, target)  # atomic: a reader never sees half a file
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, relative: str) -> bytes:
        return self._crypto.decrypt_bytes((self.root / relative).read_bytes())

    def remove(self, relative: str) -> bool:
        """Delete a stored file (its row is gone: erasure). False when it was not there."""
        try:
            (self.root / relative).unlink()
        except FileNotFoundError:
            return False
        return True

    def unreferenced(self, referenced: Iterable[str], older_than: float) -> list[str]:
        """Stored files that no row refers to and that were written more than `older_than`
        seconds ago (a younger one may be waiting for the commit of its row): what a crash
        between an erasure's commit and its unlinking left behind."""
        keep, cutoff, found = set(referenced), time.time() - older_than, []
        if not self.root.is_dir():
            return found
        for path in self.root.glob("*/*"):
            relative = path.relative_to(self.root).as_posix()
            if relative not in keep and path.is_file() and path.stat().st_mtime < cutoff:
                found.append(relative)
        return sorted(found)
    def stored(self) -> list[str]:
        """Every stored file (relative paths, sorted): what a key rotation walks, orphans included."""
        if not self.root.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob("*/*.bin"))

    def rotate(self, relative: str) -> bool:
        """Encrypt one stored file again under the current key, replacing it atomically; False
        when it already was (a resumed rotation passes over the files it did)."""
        target = self.root / relative
        token = target.read_bytes()
        if self._crypto.is_current(token):
            return False
        self._write(target, self._crypto.rotate(token))
        return True
