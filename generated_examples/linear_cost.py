"""Squared error of a one-feature linear model, one step per line.

At w=2, b=8, x=-2, y=2: J = 2, dJ/dw = -4, dJ/db = 2.
At w=-2, b=8, x=2, y=1: J = 4.5, dJ/dw = 6, dJ/db = 3.
"""


def cost(w, b, x, y):
    c = w * x
    a = c + b
    d = a - y
    J = d**2 / 2
    return J
