"""J = w**3 (dJ/dw = 12 at w = 2)."""


def cube(w):
    J = w**3
    return J
