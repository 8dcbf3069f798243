"""Reading settings from the environment (and an optional .env file).

Kept tiny and Django-free on purpose: settings.py reads it before Django is set up. Booleans
use the importers' words (core.parsing, which imports no Django either) plus a switch's.
"""

import os
from pathlib import Path

from core.parsing import ValueProblem, parse_bool

# A setting is also switched on/off, and an empty variable means off.
SWITCH_WORDS = {"on": True, "off": False, "": False}


def load_dotenv(path: Path) -> None:
    """Fill os.environ from KEY=VALUE lines; real environment variables win."""
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in SWITCH_WORDS:
        return SWITCH_WORDS[word]
    try:
        return parse_bool(word)
    except ValueProblem:
        raise ValueError(f"{name}={value!r} is not a boolean (use true/false, yes/no, 1/0)") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number") from None
