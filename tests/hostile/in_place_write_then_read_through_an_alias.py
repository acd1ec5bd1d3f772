import numpy as np


def cost(w, x):
    z = x * w
    a = z
    z += w
    return np.sum(a)
