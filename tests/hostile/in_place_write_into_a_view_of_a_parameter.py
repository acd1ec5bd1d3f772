import numpy as np


def cost(w, x):
    h = x[1:]
    h += w
    return np.sum(h * h)
