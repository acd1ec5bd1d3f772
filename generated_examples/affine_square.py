"""J = (2 + 3w)**2 (J = 121 and dJ/dw = 66 at w = 3)."""


def affine_square(w):
    J = (2 + 3 * w) ** 2
    return J
