"""Helpers several test files share (imported as ``from _helpers import ...``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FD_STEP = 1e-6


def finite_difference_grads(model, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Central differences (f(p + h) - f(p - h)) / 2h of ``model.loss``, one coordinate at a
    time, h = :data:`FD_STEP`."""
    grads = []
    for p in model.params:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + FD_STEP
            up = model.loss(x, y)
            p[idx] = old - FD_STEP
            down = model.loss(x, y)
            p[idx] = old
            g[idx] = (up - down) / (2 * FD_STEP)
        grads.append(g)
    return grads


def child_pids(pid: int) -> set[int]:
    """The process ids whose parent is ``pid`` (read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
