"""J = 1/w**2 (dJ/dw = -1/32 at w = 4)."""


def inverse_square(w):
    J = 1 / w**2
    return J
