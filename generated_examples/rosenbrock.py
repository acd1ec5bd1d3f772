"""The Rosenbrock function over a vector x (n,), written with slices instead of a loop.

f(x) = sum of 100 * (x[i+1] - x[i]**2)**2 + (1 - x[i])**2 for i < n - 1; its minimum is 0 at
x = (1, ..., 1). Every x[i] but the first and last gets a gradient from two terms of the sum.
"""

# srcdiff: --wrt x --shapes "x=(n,)"
import numpy as np


def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
