"""Redraw the PNGs of saved runs from their results alone, without retraining.

python replot.py MNIST_activation/run-20261125-101500 MNIST_lr/run-...
"""

from sgnoise.plots import replot

if __name__ == "__main__":
    replot()
