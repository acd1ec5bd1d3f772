"""Horner's method: the polynomial c[0] x^(n-1) + c[1] x^(n-2) + ... + c[n-1] at x, in a loop.

The gradient with respect to the coefficients c (an array) and the point x runs the loop
backwards: the forward pass pushes each step's accumulator before it is overwritten, and each
coefficient's adjoint is added at its index.
"""

# srcdiff: --wrt c,x --shapes "c=(n,), x=()"
import numpy as np


def horner(c, x):
    p = 0.0
    for i in range(len(c)):
        p = p * x + c[i]
    return p
