"""sgnoise: is stochastic gradient noise Gaussian or heavy-tailed?

A numpy reproduction and extension of Simsekli, Sagun & Gurbuzbalaban,
"A Tail-Index Analysis of Stochastic Gradient Noise in Deep Neural Networks",
ICML 2019.
"""

__version__ = "0.1.0"
