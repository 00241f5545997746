"""One training run's settings: :class:`RunConfig`, made once by the study, read by training
and measurement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The record columns that identify one training run.
RUN_KEYS = ("activation", "optimizer", "lr", "batch_size", "seed")

#: The longest :attr:`RunConfig.key`: a run is saved as ``runs/<key>.json`` through
#: ``.<key>.json.<pid>.tmp`` (:func:`sgnoise.results.atomic_write`), and a file name holds
#: 255 bytes on common file systems (ext4, XFS, APFS, NTFS).
MAX_KEY = 255 - len("..json.4194304.tmp")


@dataclass(frozen=True)
class RunConfig:
    """The settings of one training run (:func:`sgnoise.training.train_and_measure`).

    A study makes one per (activation, network, (learning rate, batch size), seed) from
    its :class:`~sgnoise.settings.Settings` (:meth:`sgnoise.studies.Study.runs`).
    The initialisation and the minibatch order depend only on ``seed``: runs
    that differ only in ``lr`` (or ``optimizer``) start from identical weights.

    Attributes
    ----------
    activation, optimizer, lr, batch_size, epochs, seed
        The run (see :class:`sgnoise.mlp.MLP`, :func:`sgnoise.optim.make_optimizer`).
    model : {"mlp", "cnn"}
        The network (:func:`sgnoise.model.make_model`).
    hidden : tuple of int
        Hidden-layer widths: the MLP is ``784-<hidden>-10``; the conv net's dense layers.
    channels, kernel
        The conv net's output channels per convolution and its kernel size.
    init, loss : str
        The initialisation and the training loss (see :class:`sgnoise.mlp.MLP`).
    checkpoint_every : int
        Measure every this many iterations; 0: after every epoch; -1: only at
        the end. Iteration 0 (the initialisation) and the last iteration are
        always measured.
    in_flight : bool
        Also record, for every epoch, the original study's in-flight estimate
        (last layer, minibatch gradients taken while the weights move, minus
        the full gradient at the epoch's start, blocked row-major, plain
        Mohammadi), as rows with ``mode = "in_flight_row_major"``; the column
        ``alpha_shuffled`` holds the same estimate after a seeded shuffle.
    train_reference : bool
        Test noise minus the full *train* gradient (see :func:`sgnoise.measure.measure`).
    coordinates : int
        Coordinates per layer of the per-coordinate measurement
        (:class:`sgnoise.measure.Detail`); 0: none.
    resampled : int
        Its number M of resampled minibatches.
    sparse : float
        A coordinate whose per-example gradients are non-zero for fewer than this
        share of the examples is sparse (:class:`sgnoise.measure.Detail`).
    detail : {"every", "ends"}
        Make it at every checkpoint, or only at the first, the one nearest the
        middle of training and the last.
    batch_scan : bool
        Also scan the measured batch size B at those three checkpoints
        (:func:`~sgnoise.measure.scan_sizes`).
    """

    activation: str
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    seed: int
    hidden: tuple[int, ...]
    model: str = "mlp"
    channels: tuple[int, ...] = (6, 16)
    kernel: int = 5
    init: str = "paper"
    loss: str = "cross_entropy"
    checkpoint_every: int = 0
    in_flight: bool = False
    train_reference: bool = False
    coordinates: int = 0
    resampled: int = 1000
    sparse: float = 0.05
    detail: str = "every"
    batch_scan: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "channels", tuple(self.channels))

    @property
    def key(self) -> str:
        """The run's name, unique within a sweep: ``relu_h100_lr0.1_b500_seed0`` (``h256-128``:
        two hidden layers)."""
        return (
            f"{self.activation}_h{hidden_name(self.hidden)}_lr{self.lr:g}_b{self.batch_size}"
            f"_seed{self.seed}"
        )

    def meta(self) -> dict[str, Any]:
        """The record columns that identify the run (:data:`RUN_KEYS`), and
        its network: ``hidden``, its hidden widths as text (:func:`hidden_name`)."""
        return {**{k: getattr(self, k) for k in RUN_KEYS}, "hidden": hidden_name(self.hidden)}


def hidden_name(hidden: tuple[int, ...]) -> str:
    """Hidden-layer widths as the records' ``hidden`` column writes them: ``"256-128"``."""
    return "-".join(str(int(w)) for w in hidden)
