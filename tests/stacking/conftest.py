"""Fixtures of the stacking tests."""

import pytest
from stacking_counting import LOG_ENV


@pytest.fixture
def fit_log(tmp_path, monkeypatch):
    """The file the counting models log each fit to (see ``stacking_counting.fit_count``)."""
    path = tmp_path / "fits.log"
    monkeypatch.setenv(LOG_ENV, str(path))
    return path
