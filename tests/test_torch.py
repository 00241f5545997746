"""sgnoise.torch.record on a small PyTorch CNN (skipped without PyTorch)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from sgnoise.torch import Recording, record  # noqa: E402


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 5 * 5, 10),
    )


@pytest.fixture(scope="module")
def setting():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(96, 1, 12, 12, generator=g)
    y = torch.randint(0, 10, (96,), generator=g)
    model = _cnn()
    rec = record(model, (x, y), F.cross_entropy, batch_size=16, coordinates=50, seed=3, chunk=7)
    return model, x, y, rec


def test_per_example_gradients_equal_single_example_backward_passes(setting):
    model, x, y, rec = setting
    params = dict(model.named_parameters())
    assert list(rec.per_example) == list(params)  # named by the model, in its order
    assert rec.coordinates["0.weight"].size == 36  # a tensor smaller than `coordinates`: all
    assert rec.coordinates["4.weight"].size == 50
    for row, i in enumerate(rec.order[:20]):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for k, p in params.items():
            want = p.grad.flatten()[rec.coordinates[k]].numpy()
            np.testing.assert_allclose(rec.per_example[k][row], want, rtol=1e-5, atol=1e-7)


def test_disjoint_noise_equals_the_readme_snippet_at_the_sampled_entries(setting):
    model, x, y, rec = setting
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for b in range(len(x) // 16):  # the README's loop, over the recorder's minibatches
        idx = torch.as_tensor(rec.order[b * 16 : (b + 1) * 16])
        model.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        rows.append(torch.cat([p.grad.flatten() for p in params]).numpy().copy())
    grads = np.stack(rows)
    snippet = grads - grads.mean(axis=0)
    offset = 0
    for k, p in model.named_parameters():
        want = snippet[:, offset + rec.coordinates[k]]
        offset += p.numel()
        assert rec.noise[k].shape == (6, rec.coordinates[k].size)
        np.testing.assert_allclose(rec.noise[k], want, rtol=1e-4, atol=1e-6)


def test_the_same_seed_gives_the_same_recording_and_chunks_do_not_matter(setting):
    model, x, y, rec = setting
    again = record(model, (x, y), F.cross_entropy, batch_size=16, coordinates=50, seed=3)
    assert np.array_equal(again.order, rec.order)
    for k in rec.noise:
        np.testing.assert_allclose(again.per_example[k], rec.per_example[k], atol=1e-6)
    other = record(model, (x, y), F.cross_entropy, batch_size=16, coordinates=50, seed=4)
    assert not np.array_equal(other.order, rec.order)


def test_a_dataset_works_like_tensors_and_the_mode_is_restored(setting):
    model, x, y, rec = setting
    model.train()
    dataset = torch.utils.data.TensorDataset(x, y)
    again = record(model, dataset, F.cross_entropy, batch_size=16, coordinates=50, seed=3)
    assert model.training
    for k in rec.noise:
        np.testing.assert_allclose(again.noise[k], rec.noise[k], atol=1e-6)


def test_save_writes_layers_that_analyse_reads_and_never_overwrites(setting, tmp_path):
    from sgnoise.analyse import load_matrix

    *_, rec = setting
    noise_path, example_path, json_path = rec.save(tmp_path / "noise.npz")
    assert example_path.name == "noise_per_example.npz"
    saved = json.loads(json_path.read_text())
    assert saved["config"]["batch_size"] == 16 and saved["config"]["order"] == rec.order.tolist()
    assert saved["provenance"]["torch"] == torch.__version__ and saved["provenance"]["sgnoise"]
    with np.load(noise_path) as npz:
        assert sorted(npz.files) == sorted(rec.noise)
    assert np.array_equal(load_matrix(noise_path, "4.weight"), rec.noise["4.weight"])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        rec.save(tmp_path / "noise.npz")
    assert isinstance(rec, Recording)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 50}, "at least 2"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"coordinates": 0}, "coordinates must be"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_arguments_are_named(setting, changes, message):
    model, x, y, _ = setting
    kwargs = {"batch_size": 16} | changes
    with pytest.raises(ValueError, match=message):
        record(model, (x, y), F.cross_entropy, **kwargs)


def test_sgnoise_never_imports_torch():
    code = (
        "import sys, sgnoise, sgnoise.analyse, sgnoise.torch, sgnoise.sweep; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_model_with_batch_norm_is_recorded_in_eval_mode_from_a_dataset_of_int_targets():
    torch.manual_seed(2)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    x = torch.randn(40, 5)
    model(x)  # running statistics away from their initial values
    data = [(x[i], int(i % 3)) for i in range(40)]  # a list: map-style, int targets
    rec = record(model, data, F.cross_entropy, batch_size=10, coordinates=20, seed=0)
    assert model.training  # restored
    model.eval()
    i = int(rec.order[0])
    model.zero_grad()
    F.cross_entropy(model(x[i : i + 1]), torch.tensor([i % 3])).backward()
    for k, p in model.named_parameters():
        want = p.grad.flatten()[rec.coordinates[k]].numpy()
        np.testing.assert_allclose(rec.per_example[k][0], want, rtol=1e-5, atol=1e-7)
