import numpy as xp


def cost(w, np):
    J = xp.sum(xp.exp(w) * np)
    return J
