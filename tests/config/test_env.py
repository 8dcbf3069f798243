"""config/env.py: settings read from the environment."""

import pytest

from config.env import env_bool, env_int


@pytest.mark.parametrize("text,expected", [
    ("true", True), ("Yes", True), ("1", True), ("on", True),
    ("false", False), ("no", False), ("0", False), ("off", False), ("", False),
])
def test_env_bool_reads_the_usual_words(monkeypatch, text, expected):
    monkeypatch.setenv("OFFERLAB_FLAG", text)
    assert env_bool("OFFERLAB_FLAG", default=not expected) is expected


def test_env_bool_takes_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("OFFERLAB_FLAG", raising=False)
    assert env_bool("OFFERLAB_FLAG", default=True) is True


def test_env_bool_names_the_variable_it_cannot_read(monkeypatch):
    monkeypatch.setenv("OFFERLAB_FLAG", "maybe")
    with pytest.raises(ValueError, match="OFFERLAB_FLAG='maybe' is not a boolean"):
        env_bool("OFFERLAB_FLAG")


def test_env_int_names_the_variable_it_cannot_read(monkeypatch):
    monkeypatch.setenv("OFFERLAB_N", "ten")
    with pytest.raises(ValueError, match="OFFERLAB_N='ten' is not a whole number"):
        env_int("OFFERLAB_N", 1)
