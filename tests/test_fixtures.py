"""The fixtures in tests/fixtures are the shared real manifests, byte for byte."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "manifests"


@pytest.mark.parametrize("name", ["guestbook-all-in-one.yaml", "bookinfo.yaml"])
def test_fixture_is_unmodified_copy(name: str) -> None:
    if not SHARED.exists():
        pytest.skip("shared fixtures not present beside this checkout")
    assert (HERE / name).read_bytes() == (SHARED / name).read_bytes()
