import numpy as np


def cost(w, x):
    z = x * w
    a = z[1:]
    a += w
    return np.sum(a * a)
