import math


def cost(w, x):
    J = math.exp(w) * x
    math = J
    return math
