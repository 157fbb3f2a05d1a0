"""Loading the school directory: `kiddiary-bot import-schools` and an admin's `/import` on chat.
The same files, the same words about their problems, all or nothing."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from handlers import directory
from handlers.dispatch import Dispatcher
from handlers.messages import Address, Attachment, Inbound, Kind
from handlers.turn import CoreSettings
from storage import Crypto, Repository, School
from templates import text as t
from tests.conftest import SECRET
from tests.helpers import handled, stop_delivery
from tests.test_cli import SCRIPT, clean_env

HEADER = "code,name,province,affiliation\n"
NONGBUA = "1054530001,โรงเรียนบ้านหนองบัว,แพร่,สพฐ.\n"
DONMUN = "540001,ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล,จ.แพร่,อปท.\n"
THAI_HEADER = "รหัสสถานศึกษา,ชื่อสถานศึกษา,จังหวัด,สังกัด\n"


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "import-schools", *args], cwd=tmp_path, text=True, capture_output=True,
                          env=clean_env(KIDDIARY_SECRET_KEY=SECRET), timeout=60, stdin=subprocess.DEVNULL)


def stored(tmp_path: Path) -> list[School]:
    async def read() -> list[School]:
        repo = await Repository.open(tmp_path / "data" / "kiddiary.sqlite3", Crypto(SECRET))
        try:
            async with repo.transaction():
                return await repo.directory.all()
        finally:
            await repo.close()
    return asyncio.run(read())


def line(n: int, *issues: tuple[str, dict[str, object]], lang: str = "en") -> str:
    """What the operator reads about line `n` (the template sentences, filled in)."""
    words = "; ".join(t(f"dir_err_{reason}", lang, **params) for reason, params in issues)
    return t("dir_line", lang, line=n, issues=words)


# --- the shell ---------------------------------------------------------------------

def test_a_missing_file_is_one_line(tmp_path):
    result = cli(tmp_path, "nowhere.csv")
    assert result.returncode == 1 and result.stderr == "cannot read nowhere.csv: No such file or directory\n"


def test_a_file_from_thai_excel_cp874_with_thai_headers(tmp_path):
    (tmp_path / "schools.csv").write_bytes((THAI_HEADER + NONGBUA + DONMUN).encode("cp874"))
    result = cli(tmp_path, "schools.csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "imported 2 schools: 2 added, 0 updated; 2 in the directory\n"
    assert stored(tmp_path) == [School("1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "obec"),
                                School("540001", "ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล", "แพร่", "lao")]


@pytest.mark.parametrize("data", [
    ("\ufeff" + HEADER + NONGBUA).encode(),  # Excel's "CSV UTF-8": a byte-order mark
    ("รหัสโรงเรียน;ชื่อโรงเรียน;จังหวัด;หน่วยงานต้นสังกัด\n" + NONGBUA.replace(",", ";")).encode(),
    ("รหัส สถานศึกษา\tชื่อสถานศึกษา\tจังหวัด\tสังกัด\n" + NONGBUA.replace(",", "\t")).encode("utf-16"),
], ids=["bom", "thai-variants-semicolons", "utf16-tabs"])
def test_what_excel_saves_is_read(data):
    parsed = directory.parse(data)
    assert parsed == directory.DirectoryFile((School("1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "obec"),), ())


def test_bad_rows_and_duplicates_are_listed_and_nothing_changes(tmp_path):
    (tmp_path / "good.csv").write_text(HEADER + NONGBUA)
    assert cli(tmp_path, "good.csv").returncode == 0
    before = stored(tmp_path)
    (tmp_path / "bad.csv").write_text(
        HEADER + DONMUN + "12,x,Atlantis,private\n" + DONMUN + "10545300x1,โรงเรียนวัด,แพร,สพฐ.\n"
    )
    result = cli(tmp_path, "bad.csv")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        line(3, ("affiliation", {"value": "private"}), ("school_name_length", {"value": "x", "min": 3, "max": 150}),
             ("province_unknown", {"value": "Atlantis"})),
        line(4, ("duplicate", {"code": "540001", "first": 2})),
        line(5, ("code_digits", {"value": "10545300x1"}),
             ("province_suggest", {"value": "แพร", "suggestion": "แพร่"})),
        "nothing imported: 3 lines with problems",
    ]
    assert result.stderr.splitlines()[1] == "line 4: the code 540001 already appears on line 2"
    assert stored(tmp_path) == before  # all or nothing: ศูนย์ดอนมูล (line 2 was fine) is not in


def test_files_that_are_not_a_directory(tmp_path):
    cases = {
        "book.xlsx": (b"PK\x03\x04" + b"\x00" * 40, line(1, ("workbook", {}))),
        "empty.csv": (b"", line(1, ("empty", {}))),
        "header-only.csv": (HEADER.encode(), line(1, ("empty", {}))),
        "other.csv": (b"id,title\n1,x\n", line(1, *[("no_column", {"column": c}) for c in directory.COLUMNS])),
    }
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        parsed = directory.parse(data)
        assert directory.report(parsed.problems, "en") == expected, name
    result = cli(tmp_path, "other.csv")
    assert result.stderr == (
        "line 1: the header has no code column; the header has no name column; the header has no province column;"
        " the header has no affiliation column\nnothing imported: 1 lines with problems\n"
    )


def test_many_bad_rows_list_the_first_twenty_and_a_count(tmp_path):
    rows = "".join(f"{n:06},โรงเรียนที่ {n},Atlantis,อปท.\n" for n in range(100000, 100025))
    (tmp_path / "many.csv").write_text(HEADER + rows)
    result = cli(tmp_path, "many.csv")
    listed = result.stderr.splitlines()
    assert listed[0] == line(2, ("province_unknown", {"value": "Atlantis"}))
    assert listed[19] == line(21, ("province_unknown", {"value": "Atlantis"}))
    assert listed[20:] == ["… and 5 more lines with problems", "nothing imported: 25 lines with problems"]


def test_replace_swaps_the_directory_and_without_it_rows_are_added_or_updated(tmp_path):
    (tmp_path / "first.csv").write_text(HEADER + NONGBUA + DONMUN)
    assert cli(tmp_path, "first.csv").returncode == 0
    (tmp_path / "update.csv").write_text(HEADER + "1054530001,โรงเรียนบ้านหนองบัววิทยา,แพร่,สพฐ.\n"
                                         + "1054530002,โรงเรียนบ้านนาคูหา,น่าน,สพฐ.\n")
    result = cli(tmp_path, "update.csv")
    assert result.stdout == "imported 2 schools: 1 added, 1 updated; 3 in the directory\n"
    assert [(s.code, s.name) for s in stored(tmp_path)] == [
        ("1054530001", "โรงเรียนบ้านหนองบัววิทยา"), ("1054530002", "โรงเรียนบ้านนาคูหา"),
        ("540001", "ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล")]
    result = cli(tmp_path, "--replace", "first.csv")
    assert result.stdout == ("replaced the directory with 2 schools: 0 added, 2 updated, 1 taken out;"
                             " 2 in the directory\n")
    assert [s.code for s in stored(tmp_path)] == ["1054530001", "540001"]


# --- on chat -----------------------------------------------------------------------

ADMIN, OFFICER = Address("test", "admin-1"), Address("test", "officer-9")


@pytest.fixture
async def admin_dispatcher(repo, sms, files, clock, crypto):
    dispatcher = Dispatcher(repo, CoreSettings(seal_key=crypto.signing_key, admins=frozenset({ADMIN})), sms, files,
                            clock=clock)
    yield dispatcher
    await stop_delivery(dispatcher)


class Downloads:
    """A platform's file: counts how often the bot fetched it."""

    def __init__(self, data: bytes) -> None:
        self.data, self.count = data, 0

    async def __call__(self) -> bytes:
        self.count += 1
        return self.data


async def say(dispatcher: Dispatcher, who: Address, text: str) -> str:
    replies = await handled(dispatcher, Inbound(who.channel, who.id, Kind.TEXT, text=text, event_id=None))
    return "\n".join(r.text for r in replies)


async def send_file(dispatcher: Dispatcher, who: Address, fetch: Downloads, name: str = "schools.csv",
                    caption: str = "") -> str:
    attachment = Attachment(b"", name, "text/csv" if name.endswith(".csv") else None, fetch=fetch)
    replies = await handled(dispatcher, Inbound(who.channel, who.id, Kind.FILE, text=caption, attachment=attachment))
    return "\n".join(r.text for r in replies)


async def directory_now(repo: Repository) -> list[School]:
    async with repo.transaction():
        return await repo.directory.all()


async def test_an_admin_imports_with_the_command_then_the_file(admin_dispatcher, repo, clock):
    assert await say(admin_dispatcher, ADMIN, "/import") == t("dir_send_file", "th")
    fetch = Downloads((THAI_HEADER + NONGBUA + DONMUN).encode("cp874"))
    answer = await send_file(admin_dispatcher, ADMIN, fetch, name="ทะเบียน.txt")  # not named .csv: /import said so
    assert answer == t("dir_imported", "th", added=2, updated=0, total=2) and fetch.count == 1
    assert len(await directory_now(repo)) == 2
    async with repo.transaction():
        entries = await repo.audit_log.entries()
    assert [(e.kind, e.actor) for e in entries] == [("directory_imported", str(ADMIN)),
                                                    ("directory_import_requested", str(ADMIN))]
    assert entries[0].detail["added"] == 2 and entries[0].detail["replace"] is False


async def test_import_replace_on_chat_and_a_csv_alone_updates(admin_dispatcher, repo):
    await send_file(admin_dispatcher, ADMIN, Downloads((HEADER + NONGBUA + DONMUN).encode()))  # a CSV alone
    assert await say(admin_dispatcher, ADMIN, "/import replace") == t("dir_send_file_replace", "th")
    answer = await send_file(admin_dispatcher, ADMIN, Downloads((HEADER + NONGBUA).encode()))
    assert answer == t("dir_replaced", "th", added=0, updated=1, removed=1, total=1)
    assert [s.code for s in await directory_now(repo)] == ["1054530001"]
    # The request was used: the next file adds again.
    answer = await send_file(admin_dispatcher, ADMIN, Downloads((HEADER + DONMUN).encode()))
    assert answer == t("dir_imported", "th", added=1, updated=0, total=2)


async def test_problems_are_listed_in_the_admins_language_and_nothing_changes(admin_dispatcher, repo):
    await send_file(admin_dispatcher, ADMIN, Downloads((HEADER + NONGBUA).encode()))
    await say(admin_dispatcher, ADMIN, "/lang en")
    bad = HEADER + DONMUN + DONMUN + "1,x,Atlantis,อปท.\n"
    answer = await send_file(admin_dispatcher, ADMIN, Downloads(bad.encode()))
    assert answer == t("dir_refused", "en", count=2, problems="\n".join([
        line(3, ("duplicate", {"code": "540001", "first": 2})),
        line(4, ("code_length_lao", {"value": "1", "count": 1}),
             ("school_name_length", {"value": "x", "min": 3, "max": 150}),
             ("province_unknown", {"value": "Atlantis"})),
    ]))
    assert [s.code for s in await directory_now(repo)] == ["1054530001"]


async def test_anyone_else_is_not_allowed_and_their_files_are_not_downloaded(admin_dispatcher, repo):
    assert await say(admin_dispatcher, OFFICER, "/import") == t("not_allowed", "th")
    assert await say(admin_dispatcher, OFFICER, "/import replace") == t("not_allowed", "th")
    fetch = Downloads((HEADER + NONGBUA).encode())
    assert await send_file(admin_dispatcher, OFFICER, fetch, caption="/import") == t("not_allowed", "th")
    await send_file(admin_dispatcher, OFFICER, fetch)
    assert fetch.count == 0 and await directory_now(repo) == []
    async with repo.transaction():
        assert await repo.audit_log.entries() == []


async def test_an_admins_file_in_a_group_is_not_downloaded(admin_dispatcher, repo):
    fetch = Downloads((HEADER + NONGBUA).encode())
    attachment = Attachment(b"", "schools.csv", "text/csv", fetch=fetch)
    await handled(admin_dispatcher, Inbound("test", ADMIN.id, Kind.FILE, attachment=attachment, group_id="g-1"))
    assert fetch.count == 0 and await directory_now(repo) == []


async def test_an_admins_photo_or_pdf_without_import_is_not_taken_for_a_directory(admin_dispatcher, repo):
    fetch = Downloads(b"%PDF-1.4 not a directory")
    await send_file(admin_dispatcher, ADMIN, fetch, name="scan.pdf")
    assert fetch.count == 0 and await directory_now(repo) == []
