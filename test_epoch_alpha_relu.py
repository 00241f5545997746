"""α of the stochastic gradient noise over epochs, ReLU vs sigmoid.

Edit the constants below, or override any of them from the shell:
    python test_epoch_alpha_relu.py --epochs 5 --seeds 0 1 2
Results (PNGs, results.json/.csv with configuration, seeds and versions) go to
<Dataset>_activation/<run>/, e.g. MNIST_activation/run-20261125-101500/.
"""

DATASET = "mnist10k"  # mnist10k (embedded, offline), mnist or fashion_mnist (full sets)
ACTIVATIONS = ("relu", "sigmoid")  # hidden-layer nonlinearities to compare
EPOCHS = 10  # training epochs; alpha is measured at iteration 0 and after every epoch
BATCH_SIZE = 500  # minibatch size for training and for the noise partition
LR = 0.1  # learning rate
SEEDS = (0, 1, 2)  # one run per seed: plots show the mean and the min-max band
OPTIMIZER = "sgd"  # sgd, momentum, adam or adadelta
CHECKPOINT_EVERY = 0  # measure every k iterations instead of every epoch (0: every epoch)
SUBSET = 0  # use only the first n training images (0: all) for quick runs
IN_FLIGHT = False  # also record the original study's in-flight, row-major last-layer alpha
TRAIN_REFERENCE = False  # test noise minus the full TRAIN gradient (original code's convention)
DATA_DIR = ""  # folder with the IDX files / .npz (default: $SGNOISE_DATA, keras cache, ...)
RUN_NAME = ""  # name of the run folder (default run-<date>-<time>); never silently reused
OVERWRITE = False  # allow reusing an existing RUN_NAME

SETTINGS = {
    "DATASET": (DATASET, "data set: mnist10k (embedded, offline), mnist, fashion_mnist"),
    "ACTIVATIONS": (ACTIVATIONS, "hidden-layer nonlinearities to compare"),
    "EPOCHS": (EPOCHS, "training epochs (alpha at iteration 0 and after every epoch)"),
    "BATCH_SIZE": (BATCH_SIZE, "minibatch size, for training and the noise partition"),
    "LR": (LR, "learning rate"),
    "SEEDS": (SEEDS, "seeds, one run each (plots: mean and min-max band)"),
    "OPTIMIZER": (OPTIMIZER, "sgd, momentum, adam or adadelta"),
    "CHECKPOINT_EVERY": (CHECKPOINT_EVERY, "measure every k iterations (0: every epoch)"),
    "SUBSET": (SUBSET, "use only the first n training images (0: all)"),
    "IN_FLIGHT": (IN_FLIGHT, "also record the original in-flight row-major last-layer alpha"),
    "TRAIN_REFERENCE": (TRAIN_REFERENCE, "test noise minus the full TRAIN gradient"),
    "DATA_DIR": (DATA_DIR, "folder with the data files (default: search, see README)"),
    "RUN_NAME": (RUN_NAME, "run folder name (default run-<date>-<time>)"),
    "OVERWRITE": (OVERWRITE, "allow reusing an existing --run-name"),
}

if __name__ == "__main__":
    from sgnoise import driver

    driver.main("activation", __doc__, SETTINGS)
