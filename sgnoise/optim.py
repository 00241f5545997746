"""Optimisers, each updating a list of parameter arrays in place.

The study's default is plain SGD (Simsekli et al. 2019); the others let users
ask whether the optimiser changes the gradient noise. g_t is the minibatch
gradient at step t = 1, 2, ...; theta the parameters; lr the learning rate.
"""

from __future__ import annotations

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "adam", "adadelta")


def _positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def _in_unit_interval(name: str, value: float) -> float:
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


class SGD:
    """Stochastic gradient descent (Robbins & Monro 1951).

    theta <- theta - lr * g_t
    """

    def __init__(self, lr: float = 0.1):
        self.lr = _positive("lr", lr)

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update ``params`` in place."""
        for p, g in zip(params, grads, strict=True):
            p -= p.dtype.type(self.lr) * g


class Momentum:
    """SGD with heavy-ball momentum (Polyak 1964), in the form of Sutskever et al. 2013.

    v <- mu * v - lr * g_t;   theta <- theta + v      (v_0 = 0)
    """

    def __init__(self, lr: float = 0.1, momentum: float = 0.9):
        self.lr = _positive("lr", lr)
        self.momentum = _in_unit_interval("momentum", momentum)
        self._v: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update ``params`` in place."""
        if self._v is None:
            self._v = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self._v, strict=True):
            v *= self.momentum
            v -= p.dtype.type(self.lr) * g
            p += v


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1, with bias correction).

    m <- beta1 m + (1 - beta1) g_t;   s <- beta2 s + (1 - beta2) g_t^2
    theta <- theta - lr * (m / (1 - beta1^t)) / (sqrt(s / (1 - beta2^t)) + eps)
    """

    def __init__(
        self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ):
        self.lr = _positive("lr", lr)
        self.beta1 = _in_unit_interval("beta1", beta1)
        self.beta2 = _in_unit_interval("beta2", beta2)
        self.eps = _positive("eps", eps)
        self._t = 0
        self._m: list[np.ndarray] | None = None
        self._s: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update ``params`` in place."""
        if self._m is None:
            self._m = [np.zeros_like(p) for p in params]
            self._s = [np.zeros_like(p) for p in params]
        self._t += 1
        c1 = 1 - self.beta1**self._t
        c2 = 1 - self.beta2**self._t
        for p, g, m, s in zip(params, grads, self._m, self._s, strict=True):
            m *= self.beta1
            m += (1 - self.beta1) * g
            s *= self.beta2
            s += (1 - self.beta2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(s / c2) + self.eps)


class AdaDelta:
    """AdaDelta (Zeiler 2012, Algorithm 1), with a learning-rate factor as in PyTorch.

    E[g^2] <- rho E[g^2] + (1 - rho) g_t^2
    dx = - sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g_t
    E[dx^2] <- rho E[dx^2] + (1 - rho) dx^2;   theta <- theta + lr * dx
    """

    def __init__(self, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6):
        self.lr = _positive("lr", lr)
        self.rho = _in_unit_interval("rho", rho)
        self.eps = _positive("eps", eps)
        self._g2: list[np.ndarray] | None = None
        self._dx2: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update ``params`` in place."""
        if self._g2 is None:
            self._g2 = [np.zeros_like(p) for p in params]
            self._dx2 = [np.zeros_like(p) for p in params]
        for p, g, g2, dx2 in zip(params, grads, self._g2, self._dx2, strict=True):
            g2 *= self.rho
            g2 += (1 - self.rho) * g * g
            dx = -np.sqrt(dx2 + self.eps) / np.sqrt(g2 + self.eps) * g
            dx2 *= self.rho
            dx2 += (1 - self.rho) * dx * dx
            p += self.lr * dx


def make_optimizer(name: str, lr: float, **kwargs) -> SGD | Momentum | Adam | AdaDelta:
    """The optimiser called ``name`` (one of :data:`OPTIMIZERS`) with learning rate ``lr``."""
    classes = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adadelta": AdaDelta}
    if name not in classes:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return classes[name](lr, **kwargs)
