"""A model split into helper functions: one neuron called twice, then a squared error.

Each helper gets its own forward/backward pair in the generated module, and the model's backward
pass calls neuron_backward twice, the way backprop is written by hand for a layered model. At
w1=0.5, b1=0.1, w2=-1.5, b2=0.2, x=2, y=0.3 the model's value is about 0.5638.
"""

import math


def neuron(x, w, b):
    return math.tanh(w * x + b)


def squared_error(p, y):
    return (p - y) ** 2 / 2


def model(w1, b1, w2, b2, x, y):
    h = neuron(x, w1, b1)
    p = neuron(h, w2, b2)
    J = squared_error(p, y)
    return J
