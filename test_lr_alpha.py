"""α of the stochastic gradient noise against the learning rate, ReLU vs sigmoid.

Edit the constants below, or override any of them from the shell:
    python test_lr_alpha.py --lr-step 0.01 --epochs 5
Every learning rate starts from the same initialisation. Results go to
<Dataset>_lr/<run>/, e.g. MNIST_lr/run-20261125-101500/.
"""

DATASET = "mnist10k"  # mnist10k (embedded, offline), mnist or fashion_mnist (full sets)
ACTIVATIONS = ("relu", "sigmoid")  # hidden-layer nonlinearities to compare
LR_START, LR_STOP, LR_STEP = 0.001, 0.1, 0.01  # learning rates, both ends included
EPOCHS = 5  # training epochs per learning rate; alpha at iteration 0 and at the end
BATCH_SIZE = 500  # minibatch size for training and for the noise partition
SEEDS = (0, 1, 2)  # one run per seed: plots show the mean and the min-max band
OPTIMIZER = "sgd"  # sgd, momentum, adam or adadelta
WORKERS = 2  # configurations trained in parallel (processes)
SUBSET = 0  # use only the first n training images (0: all) for quick runs
TRAIN_REFERENCE = False  # test noise minus the full TRAIN gradient (original code's convention)
DATA_DIR = ""  # folder with the IDX files / .npz (default: $SGNOISE_DATA, keras cache, ...)
RUN_NAME = ""  # name of the run folder (default run-<date>-<time>); never silently reused
OVERWRITE = False  # allow reusing an existing RUN_NAME

SETTINGS = {
    "DATASET": (DATASET, "data set: mnist10k (embedded, offline), mnist, fashion_mnist"),
    "ACTIVATIONS": (ACTIVATIONS, "hidden-layer nonlinearities to compare"),
    "LR_START": (LR_START, "smallest learning rate"),
    "LR_STOP": (LR_STOP, "largest learning rate (included)"),
    "LR_STEP": (LR_STEP, "learning-rate step"),
    "EPOCHS": (EPOCHS, "training epochs per learning rate"),
    "BATCH_SIZE": (BATCH_SIZE, "minibatch size, for training and the noise partition"),
    "SEEDS": (SEEDS, "seeds, one run each (plots: mean and min-max band)"),
    "OPTIMIZER": (OPTIMIZER, "sgd, momentum, adam or adadelta"),
    "WORKERS": (WORKERS, "configurations trained in parallel (processes)"),
    "SUBSET": (SUBSET, "use only the first n training images (0: all)"),
    "TRAIN_REFERENCE": (TRAIN_REFERENCE, "test noise minus the full TRAIN gradient"),
    "DATA_DIR": (DATA_DIR, "folder with the data files (default: search, see README)"),
    "RUN_NAME": (RUN_NAME, "run folder name (default run-<date>-<time>)"),
    "OVERWRITE": (OVERWRITE, "allow reusing an existing --run-name"),
}

if __name__ == "__main__":
    from sgnoise import driver

    driver.main("lr", __doc__, SETTINGS)
