"""J = w**2: the first worked example (dJ/dw = 6 at w = 3, -6 at w = -3)."""


def square(w):
    J = w**2
    return J
