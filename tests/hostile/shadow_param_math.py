from math import sin


def cost(w, math):
    J = sin(w) * math + w / math
    return J
