"""α of the stochastic gradient noise over training, ReLU vs sigmoid.

Edit the constants below, or override any of them from the shell:
    python test_epoch_alpha_relu.py --epochs 5 --seeds 0 1 2 --optimizer adam --lr 0.001
    python test_epoch_alpha_relu.py --help        (every setting, with its default)
Results (PNGs; results.json/.csv with the configuration, seeds, versions and git
commit) go to <OUT_ROOT>/<Dataset>_activation/<run>/, e.g.
MNIST_activation/run-20261125-101500/. Redraw the PNGs: python replot.py <run folder>
"""

DATASET = "mnist10k"  # mnist10k (embedded, offline), mnist, fashion_mnist or cifar10
MODEL = "mlp"  # mlp, or cnn (conv net: CHANNELS, KERNEL, then dense HIDDEN layers)
ACTIVATIONS = ("relu", "sigmoid")  # hidden-layer nonlinearities to compare
HIDDEN = (100,)  # hidden-layer widths: a 784-100-10 MLP (cnn: its dense layers)
CHANNELS = (6, 16)  # cnn: output channels of each convolution (LeNet-5's)
KERNEL = 5  # cnn: k x k kernels
EPOCHS = 20  # training epochs
BATCH_SIZE = 500  # minibatch size, for training and for the noise partition
LR = 0.1  # learning rate
COORDINATES = 250  # per layer, for the per-coordinate measurement (0: off)
RESAMPLED = 1000  # random minibatches M it draws: M noise values per coordinate
SPARSE = 0.05  # a coordinate with fewer non-zero per-example gradients than this share is sparse
SEEDS = (0, 1, 2)  # one run per seed: plots show the mean and the min-max band
OPTIMIZER = "sgd"  # sgd, momentum, adam or adadelta
INIT = "paper"  # initial weights: paper (N(0, 0.1^2)), he, lecun or glorot (see --help)
LOSS = "cross_entropy"  # training loss: cross_entropy or mse (squared error, one-hot targets)
CHECKPOINT_EVERY = 0  # measure every k iterations (0: after every epoch; -1: at the end)
SUBSET = 0  # use only the first n training images (0: all), for quick runs
DETAIL = "ends"  # per-coordinate measurement at the first/middle/last checkpoint, or "every"
BATCH_SCAN = True  # α against the measured batch size B at the first, middle and last checkpoint
IN_FLIGHT = True  # also record the original study's in-flight, row-major last-layer α
TRAIN_REFERENCE = False  # test noise minus the full TRAIN gradient (the original convention)
WORKERS = 2  # runs trained in parallel (processes); 1: in this process, a bar per epoch
BACKEND = "local"  # local (this machine) or dask (a dask.distributed cluster; see --help)
SCHEDULER = ""  # dask scheduler, e.g. tcp://host:8786 ('': $DASK_SCHEDULER_ADDRESS, else local)
DATA_DIR = ""  # folder with the data files ('': $SGNOISE_DATA, keras cache, ..., download)
OUT_ROOT = "."  # where <Dataset>_activation/ is made
RUN_NAME = ""  # run folder name ('': run-<date>-<time>); an existing one is never reused ...
OVERWRITE = False  # ... unless this is True
RESUME = ""  # a run folder to finish after an interruption: runs only its missing runs

if __name__ == "__main__":
    from sgnoise import sweep

    sweep.main("activation", globals())
