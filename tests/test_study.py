"""sgnoise.study: shared (memory-mapped) data and parallel runs that match serial ones."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from sgnoise import study
from sgnoise.data import load

FIELDS = ("x_train", "y_train", "x_test", "y_test")


def test_memory_mapped_data_equal_the_data_and_their_folder_goes_with_them():
    data = study.prepare("mnist10k", None, 3000, 250)
    mapped = study.memory_mapped(data)
    for field in FIELDS:
        array = getattr(mapped, field)
        assert isinstance(array, np.memmap) and not array.flags.writeable
        np.testing.assert_array_equal(array, getattr(data, field))
    assert (mapped.name, mapped.source) == (data.name, data.source)
    assert study.memory_mapped(mapped) is mapped  # mapped once only
    folder = Path(mapped.x_train.filename).parent
    assert folder.is_dir()
    del mapped, array
    gc.collect()
    assert not folder.exists()


def test_data_go_to_shared_memory_only_if_it_has_room_for_them(tmp_path, monkeypatch):
    monkeypatch.setattr(study, "SHARED_MEMORY", str(tmp_path))
    assert study._shared_memory_folder(10**6) == str(tmp_path)
    assert study._shared_memory_folder(10**18) is None  # no room: the temporary directory
    mapped = study.memory_mapped(study.prepare("mnist10k", None, 3000, 250))
    assert Path(mapped.x_train.filename).parent.parent == tmp_path
    monkeypatch.setattr(study, "SHARED_MEMORY", str(tmp_path / "missing"))
    assert study._shared_memory_folder(10**6) is None


def test_runs_in_worker_processes_on_shared_data_match_runs_in_this_process():
    # Equal up to float32 rounding: a worker's BLAS runs on one thread, this process's on all
    # cores, and their matrix products may round differently.
    data = study.prepare(load("mnist10k"), None, 3000, 250, shared=True)
    configs = study.grid(activations=["relu", "sigmoid"], lrs=[0.1], seeds=[0], epochs=1)
    configs = [{**c, "batch_size": 250, "checkpoint_every": 4} for c in configs]
    serial = study.run_all(data, configs, workers=1)
    parallel = study.run_all(data, configs, workers=2)
    for one, other in zip(serial, parallel, strict=True):
        assert one["run"] == other["run"]
        assert len(one["records"]) == len(other["records"]) == 2 * 3 * 4
        for r, s in zip(one["records"], other["records"], strict=True):
            floats = {k for k, v in r.items() if isinstance(v, float)} - {"elapsed_s"}
            assert {k: r[k] for k in floats} == pytest.approx({k: s[k] for k in floats}, rel=1e-5)
            assert {k: v for k, v in r.items() if k not in floats | {"elapsed_s"}} == {
                k: v for k, v in s.items() if k not in floats | {"elapsed_s"}
            }
        np.testing.assert_allclose(one["noise_sample"], other["noise_sample"], rtol=1e-3, atol=1e-6)
