"""Every user-visible sentence, keyed by name, in Thai and English (`texts.toml`).

Wording changes belong in the TOML file, not in the code: handlers only name a key and
pass the values to fill in (`str.format` placeholders).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

LANGUAGES = ("th", "en")
DEFAULT_LANGUAGE = "th"


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    with (Path(__file__).parent / "texts.toml").open("rb") as f:
        return tomllib.load(f)


def text(key: str, lang: str, /, **params: Any) -> str:
    """The sentence `key` in `lang` (Thai when the language is unknown), filled in."""
    entry = catalogue()[key]
    return entry.get(lang, entry[DEFAULT_LANGUAGE]).format(**params).strip()


def has(key: str) -> bool:
    return key in catalogue()
