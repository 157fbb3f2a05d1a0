"""Texts are data: every key in both languages, with the same blanks to fill in."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from handlers.steps import EDITABLE, STEPS, State
from templates import LANGUAGES, catalogue

ROOT = Path(__file__).parent.parent


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(catalogue()))
def test_both_languages_with_the_same_placeholders(key):
    entry = catalogue()[key]
    assert set(entry) == set(LANGUAGES), key
    assert fields(entry["th"]) == fields(entry["en"]), key
    assert all(entry[lang].strip() for lang in LANGUAGES)


def test_every_key_named_in_the_code_exists():
    named = set()
    for path in [*ROOT.glob("handlers/*.py"), *ROOT.glob("bot/*.py")]:
        named |= set(re.findall(r"""(?:say|\.t|text|button)\(\s*["']([a-z_]+)["']""", path.read_text()))
    assert named, "the pattern found no keys at all"
    assert named - set(catalogue()) == set()


def test_every_step_has_a_title_help_and_edit_button():
    keys = catalogue()
    for state, step in STEPS.items():
        assert step.title in keys and f"help_{state}" in keys
    for state in (State.START, *STEPS):
        assert f"help_{state}" in keys
    for state in EDITABLE:
        assert f"btn_edit_{state}" in keys


def test_every_validation_reason_has_a_sentence():
    source = "\n".join(p.read_text() for p in ROOT.glob("handlers/*.py"))
    reasons = set(re.findall(r"""Invalid\(\s*f?["']([a-z_{}.]+)["']""", source))
    expanded = set()
    for reason in reasons:
        if "{" in reason:  # code_length_{affiliation}
            expanded |= {reason.replace("{affiliation}", a) for a in ("obec", "lao")}
        else:
            expanded.add(reason)
    assert expanded - {"province_suggest"} and all(f"err_{r}" in catalogue() for r in expanded)


def test_button_labels_fit_lines_quick_replies():
    # LINE cuts quick-reply and button labels at 20 characters; Telegram shows them whole.
    long = {(key, lang): entry[lang] for key, entry in catalogue().items() if key.startswith("btn_")
            for lang in LANGUAGES if len(entry[lang]) > 20}
    assert long == {}
