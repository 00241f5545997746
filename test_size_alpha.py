"""α of the stochastic gradient noise against the network's width and depth, ReLU vs sigmoid.

Two arms, every run at one learning rate and batch size: networks of one hidden layer of
each width in WIDTHS (784-w-10), and networks of 1, 2, ... hidden layers of DEPTH_WIDTH
units (784-128-...-128-10; the network both arms make is run once). The weights start
from He's N(0, 2/fan_in), so that every width and depth starts with activations of one
scale (INIT = "paper", the original N(0, 0.1^2), would grow them with sqrt(width)).
Edit the constants below, or override any of them from the shell:
    python test_size_alpha.py --widths 64 256 1024 --depths 1 2 --epochs 3
    python test_size_alpha.py --help        (every setting, with its default)
Results go to <OUT_ROOT>/<Dataset>_size/<run>/, e.g. MNIST_size/run-20261206-101500/.
Redraw the PNGs: python replot.py <run folder>
"""

DATASET = "mnist10k"  # mnist10k (embedded, offline), mnist, fashion_mnist or cifar10
MODEL = "mlp"  # mlp, or cnn (conv net: CHANNELS, KERNEL, then the dense hidden layers swept)
ACTIVATIONS = ("relu", "sigmoid")  # hidden-layer nonlinearities to compare
WIDTHS = (32, 128, 512, 2048)  # widths w of the one-hidden-layer networks 784-w-10
DEPTHS = (1, 2, 3, 4)  # numbers of hidden layers of the deep networks ...
DEPTH_WIDTH = 128  # ... each of this width
CHANNELS = (6, 16)  # cnn: output channels of each convolution (LeNet-5's)
KERNEL = 5  # cnn: k x k kernels
EPOCHS = 5  # training epochs per run
BATCH_SIZE = 500  # minibatch size, for training and for the noise partition
LR = 0.1  # learning rate η, the same for every network
DETAIL = "ends"  # per-coordinate measurement at the first/middle/last checkpoint, or "every"
BATCH_SCAN = False  # α against the measured batch size B at the first, middle and last checkpoint
IN_FLIGHT = False  # also record the original study's in-flight, row-major last-layer α
COORDINATES = 250  # per layer, for the per-coordinate measurement (0: off)
RESAMPLED = 1000  # random minibatches M it draws: M noise values per coordinate
SPARSE = 0.05  # a coordinate with fewer non-zero per-example gradients than this share is sparse
SEEDS = (0, 1)  # one run per seed: plots show the mean and the min-max band
OPTIMIZER = "sgd"  # sgd, momentum, adam or adadelta
INIT = "he"  # initial weights: he (N(0, 2/fan_in)), lecun, glorot or paper (N(0, 0.1^2))
LOSS = "cross_entropy"  # training loss: cross_entropy or mse (squared error, one-hot targets)
CHECKPOINT_EVERY = 0  # measure every k iterations (0: after every epoch; -1: at the end)
SUBSET = 0  # use only the first n training images (0: all), for quick runs
TRAIN_REFERENCE = False  # test noise minus the full TRAIN gradient (the original convention)
WORKERS = 2  # runs trained in parallel (processes); 1: in this process, a bar per epoch
BACKEND = "local"  # local (this machine) or dask (a dask.distributed cluster; see --help)
SCHEDULER = ""  # dask scheduler, e.g. tcp://host:8786 ('': $DASK_SCHEDULER_ADDRESS, else local)
DATA_DIR = ""  # folder with the data files ('': $SGNOISE_DATA, keras cache, ..., download)
OUT_ROOT = "."  # where <Dataset>_size/ is made
RUN_NAME = ""  # run folder name ('': run-<date>-<time>); an existing one is never reused ...
OVERWRITE = False  # ... unless this is True
RESUME = ""  # a run folder to finish after an interruption: runs only its missing runs

if __name__ == "__main__":
    from sgnoise import sweep

    sweep.main("size", globals())
