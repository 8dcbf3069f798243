import pytest

from tests.conftest import HILLSTROM


@pytest.fixture(scope="module")
def hillstrom():
    """The Hillstrom e-mail test, by segment: a real dataset the numbers are checked on."""
    if not HILLSTROM.exists():
        pytest.skip(f"shared dataset not found at {HILLSTROM}")
    import pandas as pd

    df = pd.read_csv(HILLSTROM, usecols=["segment", "conversion", "spend"])
    return {seg: g for seg, g in df.groupby("segment")}
