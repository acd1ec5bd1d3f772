import math


def cost(w, math):
    J = math.sin(w)
    return J
