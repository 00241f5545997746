"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from sgnoise import calibration


@pytest.fixture(scope="module")
def few_reps():
    """Calibration curves of 4 simulated matrices per alpha instead of 8-32: the curve's
    scatter is in every interval, so results stay honest, and a new curve costs ~1/4.
    (``bench/validate_calibration.py`` validates the real ones.)"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calibration, "MIN_REPS", 4)
        patch.setattr(calibration, "MAX_REPS", 4)
        calibration._stored_curve.cache_clear()
        yield
    calibration._stored_curve.cache_clear()


#: The test files that take longest (``pytest --durations=0``), longest first. ``make test``
#: runs the files in 2 processes (``pytest -n 2 --dist loadfile``: a file's tests, and its
#: module fixtures, in one process); started first, the long files end together.
LONGEST_FIRST = (
    "test_drivers.py",
    "test_sweep_dask.py",
    "test_reliability.py",
    "test_plots.py",
    "test_tail_index.py",
    "test_notebooks.py",
    "test_analyse.py",
    "test_sweep.py",
    "test_cli.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest as before
