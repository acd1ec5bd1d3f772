"""numpy.sum where the file imports NumPy as np only: an unknown name, not a method call."""

import numpy as np


def cost(w):
    J = numpy.sum(w * w)
    return J
