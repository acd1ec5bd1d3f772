"""J = 1/w (dJ/dw = -0.25 at w = 2)."""


def reciprocal(w):
    J = 1 / w
    return J
