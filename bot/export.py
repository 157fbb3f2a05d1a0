"""`kiddiary-bot export`: registrations with personal data decrypted, as CSV or an Excel workbook.

The file leaves the bot's protection (encryption at rest), so the export takes care of what
it can: the national ID only when asked for, a new file readable by its owner only (mode 600
from the moment it exists, written under a temporary name and renamed when complete), an
audit entry naming who exported what, and no cell Excel would run as a formula. Rows stream
from the database page by page (storage/export_pages.py): memory stays flat whatever the size.

Formula neutralisation (OWASP, CSV injection): a cell starting with `=`, `+`, `-`, `@`, a tab
or a carriage return gets a leading apostrophe, in both formats. That includes phone numbers:
`+66812345678` is written `'+66812345678` (Excel shows the apostrophe in a CSV; a program
reading the file drops one leading apostrophe before such a character to get the value back).
"""

from __future__ import annotations

import csv
import getpass
import io
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from storage import Registration, Repository

COLUMNS = (
    "ref", "status", "affiliation", "school_code", "school_name", "province", "old_tsl_username",
    "old_kiddiary_username", "officer_title", "officer_first_name", "officer_last_name", "national_id",
    "phone", "confirmed_at", "decided_at", "decided_by", "account_username", "account_password_hash",
    "provision_status",
)
FORMATS = ("csv", "xlsx")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
STDOUT = "-"


@dataclass(frozen=True)
class ExportRequest:
    format: str = "csv"
    status: str | None = None  # None: every status
    include_national_id: bool = False
    output: str = STDOUT  # a file name, or "-" for standard output

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in COLUMNS if c != "national_id" or self.include_national_id)


def neutralise(value: object) -> str:
    """A cell as text that no spreadsheet runs as a formula."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def os_user() -> str:
    """Who runs the command, as the audit log names them."""
    try:
        return "os:" + getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor in the password database
        return f"os:uid={os.getuid()}"


async def export(repo: Repository, request: ExportRequest, actor: str, now: datetime,
                 stdout: BinaryIO | None = None) -> int:
    """Write the export and log it; the number of registrations written. Call it outside any
    transaction (the rows are read in short ones of their own)."""
    rows = _rows(repo, request)
    if request.output == STDOUT:
        assert stdout is not None, "standard output is the caller's to give"
        count = await _write(request.format, rows, stdout, request.columns)
        stdout.flush()
    else:
        count = await _write_private(Path(request.output), request.format, rows, request.columns)
    async with repo.transaction():
        await repo.audit_log.add(now, actor, "export", {
            "format": request.format, "status": request.status or "all", "columns": list(request.columns),
            "national_id": request.include_national_id, "output": request.output, "rows": count,
        })
    return count


async def _rows(repo: Repository, request: ExportRequest) -> AsyncIterator[list[str]]:
    registration: Registration
    async for registration in repo.export.registrations(request.status):
        yield [neutralise(getattr(registration, c)) for c in request.columns]


async def _write_private(path: Path, fmt: str, rows: AsyncIterator[list[str]], columns: Sequence[str]) -> int:
    """Write to a new file of mode 600 beside `path`, renamed to `path` once complete: the data
    is never readable by others, not even for a moment, and a failure leaves no half file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            count = await _write(fmt, rows, out, columns)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


async def _write(fmt: str, rows: AsyncIterator[list[str]], out: BinaryIO, columns: Sequence[str]) -> int:
    if fmt == "xlsx":
        return await _write_xlsx(rows, out, columns)
    return await _write_csv(rows, out, columns)


async def _write_csv(rows: AsyncIterator[list[str]], out: BinaryIO, columns: Sequence[str]) -> int:
    # A byte-order mark: without it Excel reads UTF-8 as the ANSI code page and Thai is garbled.
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)  # type: ignore[arg-type]
    try:
        text.write("\ufeff")
        writer = csv.writer(text)
        writer.writerow(columns)
        count = 0
        async for row in rows:
            writer.writerow(row)
            count += 1
        text.flush()
    finally:
        text.detach()  # the caller owns `out` (it may be standard output)
    return count


async def _write_xlsx(rows: AsyncIterator[list[str]], out: BinaryIO, columns: Sequence[str]) -> int:
    # Imported here: only an xlsx export pays for loading openpyxl.
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    # Write-only: each row goes to a temporary file as it is appended, not into a tree in memory.
    book = Workbook(write_only=True)
    sheet = book.create_sheet("registrations")
    sheet.append(list(columns))
    count = 0
    async for row in rows:
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", cell) for cell in row])  # control characters break the XML
        count += 1
    book.save(out)  # type: ignore[arg-type]
    return count
