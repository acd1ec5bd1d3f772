"""Window classifier score with a sigmoid hidden layer: s = u @ sigmoid(W @ x + b).

x (d,) is a window of word vectors laid end to end, W (h, d) and b (h,) the hidden layer and
u (h,) the scoring vector. Gradients for all four: dz = u * a * (1 - a), dW = outer(dz, x),
db = dz, du = a, dx = W.T @ dz.
"""

# srcdiff: --wrt W,b,u,x --shapes "W=(h, d), b=(h,), u=(h,), x=(d,)"
import numpy as np


def score(W, b, u, x):
    z = W @ x + b
    a = 1 / (1 + np.exp(-z))
    s = u @ a
    return s
