"""Optimisers, each updating a list of parameter arrays in place.

The study's default is plain SGD (Simsekli et al. 2019); the others let users
ask whether the optimiser changes the gradient noise. Notation: g_t is the
minibatch gradient at step t = 1, 2, ...; theta the parameters; lr the
learning rate; products, squares, square roots and divisions are elementwise.
Every class has ``step(params, grads)``, which returns whether every parameter
is finite after the update (a NaN/inf gradient makes its weight NaN/inf, so a
training loop need not check the gradients); its state (velocity, moments) is
created at the first step with the parameters' shapes and dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from sgnoise import threads
from sgnoise.mlp import PARALLEL_ELEMENTS, all_finite

OPTIMIZERS = ("sgd", "momentum", "adam", "adadelta")


def _positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def _in_unit_interval(name: str, value: float) -> float:
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _split(p: np.ndarray) -> bool:
    """Whether p is updated in pieces of rows on the worker threads (:func:`_row_pieces`)."""
    return p.ndim >= 2 and p.size >= 2 * PARALLEL_ELEMENTS


def _row_pieces(p: np.ndarray) -> list[slice]:
    """Slices of p's rows of about PARALLEL_ELEMENTS values each (one slice for small p)."""
    if not _split(p):
        return [slice(None)]
    step = max(1, PARALLEL_ELEMENTS // (p.size // len(p)))
    return [slice(r, r + step) for r in range(0, len(p), step)]


def _sgd_rows(p: np.ndarray, g: np.ndarray, step: np.ndarray, lr: float) -> bool:
    """p -= lr * g, the product written into ``step`` first (no temporary); whether p is then
    finite, checked while it is in cache (a pass over memory less than a separate check)."""
    p -= np.multiply(g, lr, out=step)
    return bool(np.isfinite(p).all())  # a piece: a small temporary, no blocks needed


def _scaled(a: float, x: np.ndarray, buffers: list[np.ndarray], i: int) -> np.ndarray:
    """a * x written into buffers[i] (an array like the i-th parameter): no temporary."""
    return np.multiply(x, a, out=buffers[i])


class _Buffers:
    """Per-parameter state arrays, allocated (zero) at the first step."""

    _state: list[list[np.ndarray]] | None = None

    def _buffers(self, params: Sequence[np.ndarray], count: int) -> list[list[np.ndarray]]:
        """``count`` lists of arrays shaped like ``params``, the same ones at every step."""
        if self._state is None:
            self._state = [[np.zeros_like(p) for p in params] for _ in range(count)]
        return self._state


class SGD(_Buffers):
    """Stochastic gradient descent (Robbins & Monro 1951).

    theta_t = theta_{t-1} - lr * g_t

    Parameters
    ----------
    lr : float
        Learning rate, > 0.

    References
    ----------
    Robbins & Monro, "A Stochastic Approximation Method", Ann. Math. Statist. 1951.
    """

    def __init__(self, lr: float = 0.1):
        self.lr = _positive("lr", lr)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> bool:
        """Update ``params`` in place from ``grads`` (aligned lists); whether every updated
        parameter is finite.

        Large parameters (wide layers) are updated in pieces of rows on the
        worker threads as well: elementwise, so the same numbers.
        """
        (scratch,) = self._buffers(params, 1)
        triples = list(zip(params, grads, scratch, strict=True))
        if not any(_split(p) for p in params):  # no hand-over to the threads
            return all([_sgd_rows(p, g, step, self.lr) for p, g, step in triples])  # all updated
        pieces = [
            functools.partial(_sgd_rows, p[rows], g[rows], step[rows], self.lr)
            for p, g, step in triples
            for rows in _row_pieces(p)
        ]
        return all(list(threads.in_order(pieces)))


class Momentum(_Buffers):
    """SGD with classical (heavy-ball) momentum, Polyak 1964, in the form of Sutskever et al. 2013.

    v_t = mu * v_{t-1} - lr * g_t,   theta_t = theta_{t-1} + v_t,   v_0 = 0

    (Sutskever et al. 2013, eq. 1-2; not the Nesterov variant.) For a constant
    lr this equals PyTorch's ``SGD(momentum=mu)``, which keeps v / (-lr).

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    momentum : float
        mu, in [0, 1).

    References
    ----------
    Polyak, "Some methods of speeding up the convergence of iteration methods",
    USSR Comput. Math. Math. Phys. 1964.
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
    momentum in deep learning", ICML 2013.
    """

    def __init__(self, lr: float = 0.1, momentum: float = 0.9):
        self.lr = _positive("lr", lr)
        self.momentum = _in_unit_interval("momentum", momentum)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> bool:
        """Update ``params`` in place from ``grads`` (aligned lists); whether every updated
        parameter is finite."""
        velocity, scratch = self._buffers(params, 2)
        for i, (p, g, v) in enumerate(zip(params, grads, velocity, strict=True)):
            v *= self.momentum
            v -= _scaled(self.lr, g, scratch, i)
            p += v
        return all(all_finite(p) for p in params)


class Adam(_Buffers):
    """Adam with bias correction (Kingma & Ba 2015, Algorithm 1).

    m_t = beta1 m_{t-1} + (1 - beta1) g_t,      s_t = beta2 s_{t-1} + (1 - beta2) g_t^2
    m^_t = m_t / (1 - beta1^t),                 s^_t = s_t / (1 - beta2^t)
    theta_t = theta_{t-1} - lr * m^_t / (sqrt(s^_t) + eps),   m_0 = s_0 = 0

    Parameters
    ----------
    lr : float
        Step size alpha, > 0.
    beta1, beta2 : float
        Decay rates of the moment estimates, in [0, 1).
    eps : float
        > 0, added to the denominator.

    References
    ----------
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    def __init__(
        self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ):
        self.lr = _positive("lr", lr)
        self.beta1 = _in_unit_interval("beta1", beta1)
        self.beta2 = _in_unit_interval("beta2", beta2)
        self.eps = _positive("eps", eps)
        self._t = 0

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> bool:
        """Update ``params`` in place from ``grads`` (aligned lists); whether every updated
        parameter is finite."""
        first, second = self._buffers(params, 2)
        self._t += 1
        c1 = 1 - self.beta1**self._t
        c2 = 1 - self.beta2**self._t
        for p, g, m, s in zip(params, grads, first, second, strict=True):
            m *= self.beta1
            m += (1 - self.beta1) * g
            s *= self.beta2
            s += (1 - self.beta2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(s / c2) + self.eps)
        return all(all_finite(p) for p in params)


class AdaDelta(_Buffers):
    """AdaDelta (Zeiler 2012, Algorithm 1), with a learning-rate factor as in PyTorch.

    E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g_t^2
    dx_t = - sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
    E[dx^2]_t = rho E[dx^2]_{t-1} + (1 - rho) dx_t^2
    theta_t = theta_{t-1} + lr * dx_t,   E[g^2]_0 = E[dx^2]_0 = 0

    lr = 1 (the default) is Zeiler's method exactly.

    Parameters
    ----------
    lr : float
        Factor on the update, > 0.
    rho : float
        Decay rate, in [0, 1).
    eps : float
        > 0, inside both square roots.

    References
    ----------
    Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012.
    """

    def __init__(self, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6):
        self.lr = _positive("lr", lr)
        self.rho = _in_unit_interval("rho", rho)
        self.eps = _positive("eps", eps)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> bool:
        """Update ``params`` in place from ``grads`` (aligned lists); whether every updated
        parameter is finite."""
        grad_sq, step_sq = self._buffers(params, 2)
        for p, g, g2, dx2 in zip(params, grads, grad_sq, step_sq, strict=True):
            g2 *= self.rho
            g2 += (1 - self.rho) * g * g
            dx = -np.sqrt(dx2 + self.eps) / np.sqrt(g2 + self.eps) * g
            dx2 *= self.rho
            dx2 += (1 - self.rho) * dx * dx
            p += self.lr * dx
        return all(all_finite(p) for p in params)


_CLASSES = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adadelta": AdaDelta}


def make_optimizer(name: str, lr: float, **kwargs: float) -> SGD | Momentum | Adam | AdaDelta:
    """The optimiser called ``name`` with learning rate ``lr``.

    Parameters
    ----------
    name : {"sgd", "momentum", "adam", "adadelta"}
        One of :data:`OPTIMIZERS`.
    lr : float
        Learning rate, > 0.
    **kwargs
        The class's other hyper-parameters (e.g. ``momentum=0.9``, ``beta1=0.9``).
    """
    if name not in _CLASSES:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return _CLASSES[name](lr, **kwargs)
