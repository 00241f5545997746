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
