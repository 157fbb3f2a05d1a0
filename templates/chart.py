"""The admins' progress chart (`/stats chart`) as a PNG: matplotlib, Agg, Sarabun for Thai.

Two panels: registrations started per day, stacked by where they stand now, and the schools
registered so far against the target (the school directory) and the deadline, when known.
The caller gives every label already in the admin's language (`ChartData`): this module draws,
it does not choose words. Rendering takes a few hundred milliseconds: run it in a thread.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import fontpkg_sarabun
import matplotlib

matplotlib.use("Agg")  # no display on a server; set before pyplot is imported anywhere

from matplotlib import dates as mdates
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# One colour per status, in the order the bars are stacked (bottom first).
COLOURS = {
    "approved": "#2e7d32", "submitted": "#1976d2", "rejected": "#c62828", "letter_issued": "#f9a825",
    "draft": "#9e9e9e", "cancelled": "#d7ccc8", "revoked": "#6d4c41",
}
_lock = threading.Lock()  # matplotlib's font cache and text layout are not made for threads


@dataclass(frozen=True)
class ChartData:
    days: tuple[date, ...]  # every day from the first registration to the last day shown
    started: dict[str, tuple[int, ...]]  # status → registrations started each day (same length as days)
    registered: tuple[int, ...]  # schools registered so far, at the end of each day up to today
    status_labels: dict[str, str]
    title: str
    started_label: str
    registered_label: str
    target: int | None = None  # schools to register (the directory), drawn when known
    target_label: str = ""
    deadline: date | None = None  # drawn when known
    deadline_label: str = ""


@lru_cache(maxsize=1)
def font_family() -> str:
    """Register Sarabun with matplotlib once per process; its family name."""
    files = fontpkg_sarabun.ROOT / "files"
    for name in ("Sarabun-Regular.ttf", "Sarabun-Bold.ttf"):
        font_manager.fontManager.addfont(str(files / name))
    return font_manager.FontProperties(fname=str(files / "Sarabun-Regular.ttf")).get_name()


def figure(data: ChartData) -> Figure:
    """The chart as a matplotlib figure (not attached to pyplot: nothing global to close)."""
    family = font_family()
    fig = Figure(figsize=(11, 7.5), dpi=110, layout="constrained")
    fig.suptitle(data.title, fontfamily=family, fontsize=16, fontweight="bold")
    bars, progress = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    x = list(data.days)
    bottom = [0] * len(x)
    for status, counts in data.started.items():
        if any(counts):
            bars.bar(x, counts, bottom=bottom, color=COLOURS.get(status, "#607d8b"),
                     label=data.status_labels.get(status, status), width=0.8)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    bars.set_title(data.started_label, fontfamily=family, loc="left")
    progress.plot(x[:len(data.registered)], data.registered, color=COLOURS["approved"], marker="o", markersize=3,
                  label=data.registered_label)
    progress.set_title(data.registered_label, fontfamily=family, loc="left")
    if data.target:
        progress.axhline(data.target, color="#455a64", linestyle="--", label=data.target_label)
        progress.set_ylim(top=max(data.target, *data.registered) * 1.08)
    if data.deadline is not None:
        progress.axvline(data.deadline, color="#c62828", linestyle=":", label=data.deadline_label)
    if x:  # the days shown, a half day either side: a single day must not stretch over years
        progress.set_xlim(mdates.date2num(x[0]) - 0.5, mdates.date2num(x[-1]) + 0.5)
    for axes in (bars, progress):
        axes.grid(axis="y", alpha=0.3)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of registrations: no 0.05
        axes.set_ylim(bottom=0, top=max(axes.get_ylim()[1], 1))
        handles, _ = axes.get_legend_handles_labels()
        if handles:  # beside the plot, where it hides no bar
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), prop={"family": family, "size": 9})
        for label in axes.get_xticklabels() + axes.get_yticklabels():
            label.set_fontfamily(family)
    progress.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=10))
    progress.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m"))
    fig.autofmt_xdate()
    return fig


def render_chart(data: ChartData) -> bytes:
    """The chart as PNG bytes."""
    with _lock:
        buffer = io.BytesIO()
        figure(data).savefig(buffer, format="png")
        return buffer.getvalue()
