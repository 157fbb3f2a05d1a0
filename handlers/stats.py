"""`/stats` and `/stats chart` (admins), and the same figures in words for `kiddiary-bot stats`.

The figures come from `repo.stats` (storage/stats.py); this module only puts them into
sentences (templates/texts.toml) and decides what the chart shows. The chart itself is not
made in the turn: the message names it (`Document.link = ("chart", 0, language)`) and it is
drawn when the message is sent (bot/letter_files.py), with the figures of that moment.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from handlers.messages import Document, Outbound
from handlers.turn import BANGKOK, Turn
from storage.models import STATUSES
from storage.stats import DailySeries, Figures, ProvinceShare
from templates import LANGUAGES, text
from templates.chart import COLOURS, ChartData

TOP = 10  # provinces shown at each end of the ranking


def today_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Today in Thailand, as [start, end)."""
    start = datetime.combine(now.astimezone(BANGKOK).date(), time(0), BANGKOK)
    return start, start + timedelta(days=1)


async def command(turn: Turn, argument: str = "") -> None:
    if turn.inbound.sender not in turn.settings.admins:
        turn.say("not_allowed")
        return
    if argument == "chart":
        turn.replies.append(Outbound(turn.t("stats_chart_caption", when=turn.when(turn.now)), document=chart_document(
            turn.conv.lang, turn.now)))
        return
    if argument:
        turn.say("stats_usage")
        return
    figures = await turn.repo.stats.figures(*today_bounds(turn.now))
    provinces = await turn.repo.stats.provinces() if figures.directory_schools else []
    lang = turn.conv.lang
    turn.replies.append(Outbound("\n\n".join([status_block(figures, lang), *sections(figures, provinces, lang),
                                              turn.t("stats_chart_hint")])))


def chart_document(lang: str, now: datetime) -> Document:
    day = now.astimezone(BANGKOK).date().isoformat()
    return Document(f"kiddiary-stats-{day}.png", mime_type="image/png", link=("chart", 0, LANGUAGES.index(lang)))


# --- in words ------------------------------------------------------------------------------

def status_block(figures: Figures, lang: str) -> str:
    lines = "\n".join(f"• {text(f'status_name_{s}', lang)}: {figures.by_status[s]}"
                      for s in STATUSES if figures.by_status.get(s))
    return text("stats", lang, lines=lines or "-", total=figures.total)


def sections(figures: Figures, provinces: list[ProvinceShare], lang: str) -> list[str]:
    """Everything after the counts by status, a paragraph each (the chat and the CLI share them)."""
    out = []
    if figures.by_affiliation:
        out.append(text("stats_affiliation_heading", lang) + "\n" + "\n".join(
            text("stats_affiliation_line", lang, affiliation=text(f"affiliation_{a.affiliation}", lang),
                 registrations=a.registrations, registered=a.registered, approved=a.approved)
            for a in figures.by_affiliation))
    wait = duration(figures.median_wait, lang) if figures.median_wait is not None else text("stats_no_decision", lang)
    review = [text("stats_today", lang, submitted=figures.submitted_today, decided=figures.decided_today),
              text("stats_median_wait", lang, wait=wait), text("stats_queue", lang, count=figures.queue)]
    if figures.accounts_not_made:
        review.append(text("stats_accounts_not_made", lang, count=figures.accounts_not_made))
    out.append("\n".join(review))
    out.append(province_block(figures, provinces, lang))
    return out


def ranked(provinces: list[ProvinceShare]) -> tuple[list[ProvinceShare], list[ProvinceShare]]:
    """The top ten provinces by share registered, and the bottom ten (lowest first) not already
    among the top: with twelve provinces, the bottom list has two."""
    order = sorted(provinces, key=lambda p: (-p.share, -p.schools, p.province))
    top = order[:TOP]
    bottom = [p for p in reversed(order) if p not in top][:TOP]
    return top, bottom


def province_block(figures: Figures, provinces: list[ProvinceShare], lang: str) -> str:
    if not figures.directory_schools:
        return text("stats_no_directory", lang)
    registered = sum(p.registered for p in provinces)
    lines = [text("stats_provinces_heading", lang, registered=registered, schools=figures.directory_schools,
                  share=percent(registered / figures.directory_schools))]
    top, bottom = ranked(provinces)
    for key, group in (("stats_provinces_top", top), ("stats_provinces_bottom", bottom)):
        if group:
            lines.append(text(key, lang, count=len(group)))
            lines += [text("stats_province_line", lang, n=i, province=p.province, registered=p.registered,
                           schools=p.schools, share=percent(p.share)) for i, p in enumerate(group, 1)]
    return "\n".join(lines)


def percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def duration(value: timedelta, lang: str) -> str:
    minutes = round(value.total_seconds() / 60)
    if minutes < 60:
        return text("stats_minutes", lang, minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return text("stats_hours", lang, hours=hours, minutes=minutes)
    days, hours = divmod(hours, 24)
    return text("stats_days", lang, days=days, hours=hours)


# --- the chart -----------------------------------------------------------------------------

STACK = ("approved", "submitted", "rejected", "letter_issued", "draft", "cancelled", "revoked")  # bottom first
assert set(STACK) == set(STATUSES) == set(COLOURS)


def chart_data(
    series: DailySeries, lang: str, today: date, target: int | None = None, deadline: date | None = None,
) -> ChartData:
    """What the chart shows: every day from the first registration (or today) to today, or to the
    deadline when it is later; the progress line stops at today. `target`: the schools of the
    directory (None: no directory, no target line); `deadline`: drawn only when given."""
    known = [*series.started, *series.first_registered]
    first = min([*known, today])
    last = max([today, *known, *([deadline] if deadline else [])])
    days = tuple(first + timedelta(days=i) for i in range((last - first).days + 1))
    started = {s: tuple(series.started.get(d, {}).get(s, 0) for d in days) for s in STACK}
    registered, total = [], 0
    for d in days:
        if d > today:
            break
        total += series.first_registered.get(d, 0)
        registered.append(total)
    return ChartData(
        days=days, started=started, registered=tuple(registered),
        status_labels={s: text(f"status_name_{s}", lang) for s in STACK},
        title=text("chart_title", lang), started_label=text("chart_started", lang),
        registered_label=text("chart_registered", lang),
        target=target or None, target_label=text("chart_target", lang, count=target or 0),
        deadline=deadline, deadline_label=text("chart_deadline", lang, day=deadline.isoformat() if deadline else ""),
    )
