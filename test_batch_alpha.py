"""α of the stochastic gradient noise against the training batch size b, ReLU vs sigmoid.

Every b is trained twice from the same initialisation (per seed): once at the fixed
learning rate LR, once at the fixed ratio η/b = LR / REFERENCE_BATCH (the axis of
Gurbuzbalaban, Simsekli & Zhu 2021). The noise is measured, as in the other studies, over
minibatches of the run's own training batch size. Edit the constants below, or override
any of them from the shell:
    python test_batch_alpha.py --batch-sizes 32 128 512 --epochs 3
    python test_batch_alpha.py --help        (every setting, with its default)
Results go to <OUT_ROOT>/<Dataset>_batch/<run>/, e.g. MNIST_batch/run-20261201-101500/.
Redraw the PNGs: python replot.py <run folder>
"""

DATASET = "mnist10k"  # mnist10k (embedded, offline), mnist, fashion_mnist or cifar10
MODEL = "mlp"  # mlp, or cnn (conv net: CHANNELS, KERNEL, then dense HIDDEN layers)
ACTIVATIONS = ("relu", "sigmoid")  # hidden-layer nonlinearities to compare
HIDDEN = (100,)  # hidden-layer widths: a 784-100-10 MLP (cnn: its dense layers)
CHANNELS = (6, 16)  # cnn: output channels of each convolution (LeNet-5's)
KERNEL = 5  # cnn: k x k kernels
BATCH_SIZES = (64, 128, 256, 512)  # training batch sizes (mnist10k's test split allows <= 666)
LR = 0.1  # the fixed learning rate, and the rate at REFERENCE_BATCH for the fixed-ratio runs
REFERENCE_BATCH = 128  # fixed-ratio runs keep η/b = LR / REFERENCE_BATCH
EPOCHS = 5  # training epochs per run
DETAIL = "ends"  # per-coordinate measurement at the first/middle/last checkpoint, or "every"
BATCH_SCAN = False  # α against the measured batch size B at the first, middle and last checkpoint
IN_FLIGHT = False  # also record the original study's in-flight, row-major last-layer α
COORDINATES = 250  # per layer, for the per-coordinate measurement (0: off)
RESAMPLED = 1000  # random minibatches M it draws: M noise values per coordinate
SPARSE = 0.05  # a coordinate with fewer non-zero per-example gradients than this share is sparse
SEEDS = (0, 1)  # one run per seed: plots show the mean and the min-max band
OPTIMIZER = "sgd"  # sgd, momentum, adam or adadelta
INIT = "paper"  # initial weights: paper (N(0, 0.1^2)), he, lecun or glorot (see --help)
LOSS = "cross_entropy"  # training loss: cross_entropy or mse (squared error, one-hot targets)
CHECKPOINT_EVERY = 0  # measure every k iterations (0: after every epoch; -1: at the end)
SUBSET = 0  # use only the first n training images (0: all), for quick runs
TRAIN_REFERENCE = False  # test noise minus the full TRAIN gradient (the original convention)
WORKERS = 2  # runs trained in parallel (processes); 1: in this process, a bar per epoch
BACKEND = "local"  # local (this machine) or dask (a dask.distributed cluster; see --help)
SCHEDULER = ""  # dask scheduler, e.g. tcp://host:8786 ('': $DASK_SCHEDULER_ADDRESS, else local)
DATA_DIR = ""  # folder with the data files ('': $SGNOISE_DATA, keras cache, ..., download)
OUT_ROOT = "."  # where <Dataset>_batch/ is made
RUN_NAME = ""  # run folder name ('': run-<date>-<time>); an existing one is never reused ...
OVERWRITE = False  # ... unless this is True
RESUME = ""  # a run folder to finish after an interruption: runs only its missing runs

if __name__ == "__main__":
    from sgnoise import sweep

    sweep.main("batch", globals())
