import numpy as np


def cost(w, unreduce):
    J = np.sum(w * unreduce)
    return J
