"""Reading a school directory file: bytes in, schools and problems out. Pure, no I/O.

Used by `kiddiary-bot import-schools` and by an admin's `/import` on chat, so both accept
the same files and say the same things about them. The files come from whoever keeps the
list, usually saved from Excel: UTF-8 with or without a byte-order mark, UTF-16 ("Unicode
text"), or the Thai ANSI code page (cp874 / TIS-620); commas, semicolons or tabs; headers
in English or Thai. A problem names the line and says what is wrong in words; a file with
any problem is imported not at all (the caller's rule), so every problem is reported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from handlers import validation
from handlers.normalize import clean_text, fold
from storage.models import School
from templates import text

COLUMNS = ("code", "name", "province", "affiliation")
# Header spellings (folded, without spaces, dots, dashes or underscores) → column.
HEADERS: dict[str, str] = {
    **dict.fromkeys(("code", "schoolcode", "รหัส", "รหัสสถานศึกษา", "รหัสโรงเรียน", "รหัสศูนย์",
                     "รหัสศูนย์พัฒนาเด็กเล็ก", "รหัสหน่วยงาน", "รหัส10หลัก", "รหัสสถานศึกษา10หลัก", "รหัสsmis",
                     "รหัสโรงเรียน10หลัก"), "code"),
    **dict.fromkeys(("name", "schoolname", "ชื่อ", "ชื่อสถานศึกษา", "ชื่อโรงเรียน", "ชื่อศูนย์",
                     "ชื่อศูนย์พัฒนาเด็กเล็ก", "ชื่อหน่วยงาน"), "name"),
    **dict.fromkeys(("province", "จังหวัด", "จ", "ชื่อจังหวัด"), "province"),
    **dict.fromkeys(("affiliation", "สังกัด", "หน่วยงานต้นสังกัด", "ต้นสังกัด", "ประเภท", "type"), "affiliation"),
}
AFFILIATIONS: dict[str, str] = {
    **dict.fromkeys(("obec", "สพฐ", "สำนักงานคณะกรรมการการศึกษาขั้นพื้นฐาน"), "obec"),
    **dict.fromkeys(("lao", "dla", "อปท", "สถ", "องค์กรปกครองส่วนท้องถิ่น", "กรมส่งเสริมการปกครองท้องถิ่น"), "lao"),
}
SHOWN = 40  # characters of a cell quoted back in a problem


@dataclass(frozen=True)
class Issue:
    reason: str  # template key suffix: dir_err_<reason>
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    line: int  # in the file as a text editor numbers it (the header is line 1)
    issues: tuple[Issue, ...]


@dataclass(frozen=True)
class DirectoryFile:
    schools: tuple[School, ...] = ()
    problems: tuple[Problem, ...] = ()


def parse(data: bytes) -> DirectoryFile:
    decoded = _decode(data)
    if isinstance(decoded, Issue):
        return DirectoryFile(problems=(Problem(1, (decoded,)),))
    lines = decoded.splitlines(keepends=True)
    header_line = next((ln for ln in lines if ln.strip()), "")
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.reader(io.StringIO(decoded, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    schools: list[School] = []
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}
    line = 1
    for row in reader:
        start, line = line, reader.line_num + 1  # a quoted cell may span lines: name the first
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            columns = {}
            for i, cell in enumerate(row):
                key = HEADERS.get(_header_key(cell))
                if key is not None:
                    columns.setdefault(key, i)
            missing = [Issue("no_column", {"column": c}) for c in COLUMNS if c not in columns]
            if missing:
                return DirectoryFile(problems=(Problem(start, tuple(missing)),))
            continue
        cells = {c: clean_text(row[i]) if i < len(row) else "" for c, i in columns.items()}
        school = _school(cells)
        if isinstance(school, School) and school.code in first_seen:
            school = (Issue("duplicate", {"code": school.code, "first": first_seen[school.code]}),)
        if isinstance(school, School):
            first_seen[school.code] = start
            schools.append(school)
        else:
            problems.append(Problem(start, school))
    if header is None or (not schools and not problems):
        return DirectoryFile(problems=(Problem(1, (Issue("empty"),)),))
    return DirectoryFile(tuple(schools), tuple(problems))


def _decode(data: bytes) -> str | Issue:
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):  # .xlsx (a zip) or the older .xls
        return Issue("workbook")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return Issue("encoding")
    for encoding in ("utf-8-sig", "cp874"):  # cp874: Thai Windows (TIS-620 and a few more)
        try:
            decoded = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in decoded:
            return decoded
    return Issue("encoding")


def _header_key(cell: str) -> str:
    return "".join(ch for ch in fold(cell) if ch not in " ._-\ufeff")


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN else value[:SHOWN - 1] + "…"


def _school(cells: dict[str, str]) -> School | tuple[Issue, ...]:
    issues: list[Issue] = []
    for column in COLUMNS:
        if not cells[column]:
            issues.append(Issue("missing", {"column": column}))
    affiliation = AFFILIATIONS.get(_header_key(cells["affiliation"])) if cells["affiliation"] else None
    if cells["affiliation"] and affiliation is None:
        issues.append(Issue("affiliation", {"value": _shown(cells["affiliation"])}))
    code: str | validation.Invalid = ""
    if cells["code"]:
        code = validation.school_code(cells["code"], affiliation or "lao")
        if isinstance(code, validation.Invalid) and (affiliation or code.reason == "code_digits"):
            issues.append(Issue(code.reason, {"value": _shown(cells["code"]), **code.params}))
    name: str | validation.Invalid = cells["name"]
    if cells["name"]:
        name = validation.school_name(cells["name"])
        if isinstance(name, validation.Invalid):
            issues.append(Issue(name.reason, {"value": _shown(cells["name"]), **name.params}))
    province: str | validation.Invalid = cells["province"]
    if cells["province"]:
        province = validation.province(cells["province"])
        if isinstance(province, validation.Invalid):
            suggestion = province.params.get("suggestion")
            issues.append(Issue("province_suggest" if suggestion else "province_unknown",
                                {"value": _shown(cells["province"]), "suggestion": suggestion or ""}))
    if issues:
        return tuple(issues)
    assert isinstance(code, str) and isinstance(name, str) and isinstance(province, str) and affiliation
    return School(code, name, province, affiliation)


# --- in words ------------------------------------------------------------------------

def describe(problem: Problem, lang: str) -> str:
    """One line: where, and everything wrong there."""
    issues = []
    for issue in problem.issues:
        params = dict(issue.params)
        if "column" in params:
            params["column"] = text(f"dir_column_{params['column']}", lang)
        if issue.reason == "province_unknown":
            params.pop("suggestion", None)
        issues.append(text(f"dir_err_{issue.reason}", lang, **params))
    return text("dir_line", lang, line=problem.line, issues="; ".join(issues))


def report(problems: tuple[Problem, ...] | list[Problem], lang: str, limit: int = 20) -> str:
    """The first `limit` problems, a line each, and how many more there are."""
    lines = [describe(p, lang) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(text("dir_more", lang, count=len(problems) - limit))
    return "\n".join(lines)
