import math


def cost(w):
    J = math.hypot(*w)
    return J
