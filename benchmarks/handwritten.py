"""An expert's hand-written NumPy gradients of the worked examples in generated_examples/.

They are the bar that srcdiff's generated code is measured against (benchmarks/bench_numpy.py)
and, once tests/test_handwritten.py has checked them against central differences, an oracle for
it. So they are written the way someone who knows backprop writes them by hand: vectorized, the
elementwise chain collapsed to its simplest form (dz = (p - y) / m, not the rule-by-rule product),
forward values reused instead of recomputed, and in-place updates where a buffer is dead anyway
(as in CS231n's softmax layer), but nothing contorted.

For the example ``<name>`` (the file stem of ``generated_examples/<name>.py``) there are

* ``<name>_value(...)``: the forward pass alone, the value the source function returns;
* ``<name>_value_and_grad(...)``: ``(value, grads)`` with srcdiff's conventions: the same
  parameters as the source function, ``grads`` the bare gradient for one ``--wrt`` name and a
  tuple in ``--wrt`` order for several, each with its parameter's shape and dtype, and a NumPy
  scalar for a scalar parameter (the bias ``b``).

``EXAMPLES`` maps each name to its source function's name and ``--wrt`` list.
"""

from __future__ import annotations

import numpy as np

# name -> (function name in generated_examples/<name>.py, --wrt names in order)
EXAMPLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "logistic_regression": ("cost", ("w", "b")),
    "logistic_regression_stable": ("cost", ("w", "b")),
    "window_sigmoid": ("score", ("W", "b", "u", "x")),
    "window_tanh": ("score", ("W", "b", "u", "x")),
    "window_relu": ("score", ("W", "b", "u", "x")),
    "mlp": ("loss", ("W1", "b1", "W2", "b2")),
    "linear_regression": ("cost", ("w", "b")),
    "rosenbrock": ("rosenbrock", ("x",)),
    "horner": ("horner", ("c", "x")),
    "rnn": ("rnn", ("Wx", "Wh", "b", "h")),
    "rnn_sequence": ("rnn_loss", ("Wx", "Wh", "b", "h")),
    "huber_regression": ("huber_cost", ("w",)),
    "rnn_states": ("rnn_states", ("Wx", "Wh", "b", "h")),
}


# -- logistic regression --------------------------------------------------------------------


def logistic_regression_value(w, b, X, y):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def logistic_regression_value_and_grad(w, b, X, y):
    m = X.shape[0]
    p = 1 / (1 + np.exp(-(X @ w + b)))
    J = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    dz = (p - y) / m
    return J, (X.T @ dz, dz.sum())


def logistic_regression_stable_value(w, b, X, y):
    # y * softplus(-z) + (1 - y) * softplus(z) == softplus(z) - y * z
    z = X @ w + b
    return np.mean(np.logaddexp(0, z) - y * z)


def logistic_regression_stable_value_and_grad(w, b, X, y):
    m = X.shape[0]
    z = X @ w + b
    sp = np.logaddexp(0, z)
    J = np.mean(sp - y * z)
    p = np.exp(z - sp)  # sigmoid(z), stable: z - softplus(z) <= 0
    dz = (p - y) / m
    return J, (X.T @ dz, dz.sum())


# -- window classifier: s = u @ f(W @ x + b) --------------------------------------------------


def _window_grads(dz, a, W, x):
    # z = W @ x + b, s = u @ a: dW = outer(dz, x), db = dz, du = a, dx = W.T @ dz
    return np.outer(dz, x), dz, a, W.T @ dz


def window_sigmoid_value(W, b, u, x):
    return u @ (1 / (1 + np.exp(-(W @ x + b))))


def window_sigmoid_value_and_grad(W, b, u, x):
    a = 1 / (1 + np.exp(-(W @ x + b)))
    dz = u * a * (1 - a)
    return u @ a, _window_grads(dz, a, W, x)


def window_tanh_value(W, b, u, x):
    return u @ np.tanh(W @ x + b)


def window_tanh_value_and_grad(W, b, u, x):
    a = np.tanh(W @ x + b)
    dz = u * (1 - a * a)
    return u @ a, _window_grads(dz, a, W, x)


def window_relu_value(W, b, u, x):
    return u @ np.maximum(W @ x + b, 0)


def window_relu_value_and_grad(W, b, u, x):
    z = W @ x + b
    a = np.maximum(z, 0)
    dz = u * (z > 0)
    return u @ a, _window_grads(dz, a, W, x)


# -- 2-layer MLP, softmax cross-entropy -------------------------------------------------------


def mlp_value(W1, b1, W2, b2, X, y):
    m = X.shape[0]
    h = np.maximum(X @ W1 + b1, 0)
    logits = h @ W2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits).sum(axis=1))
    return np.mean(lse - logits[np.arange(m), y])


def mlp_value_and_grad(W1, b1, W2, b2, X, y):
    m = X.shape[0]
    rows = np.arange(m)
    h = np.maximum(X @ W1 + b1, 0)
    logits = h @ W2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    s = e.sum(axis=1, keepdims=True)
    J = np.mean(np.log(s[:, 0]) - logits[rows, y])
    # dlogits = (softmax - onehot(y)) / m, built in place in e
    e /= s
    e[rows, y] -= 1
    e /= m
    dW2 = h.T @ e
    db2 = e.sum(axis=0)
    dh = e @ W2.T
    dh *= h > 0
    dW1 = X.T @ dh
    db1 = dh.sum(axis=0)
    return J, (dW1, db1, dW2, db2)


# -- linear regression ------------------------------------------------------------------------


def linear_regression_value(w, b, X, y):
    r = X @ w + b - y
    return (r @ r) / X.shape[0]


def linear_regression_value_and_grad(w, b, X, y):
    m = X.shape[0]
    r = X @ w + b - y
    J = (r @ r) / m
    dr = (2 / m) * r
    return J, (X.T @ dr, dr.sum())


# -- Rosenbrock -------------------------------------------------------------------------------


def rosenbrock_value(x):
    d = x[1:] - x[:-1] ** 2
    e = 1 - x[:-1]
    return 100 * (d @ d) + e @ e


def rosenbrock_value_and_grad(x):
    xi = x[:-1]
    d = x[1:] - xi**2
    e = 1 - xi
    f = 100 * (d @ d) + e @ e
    g = np.empty_like(x)
    g[:-1] = -400 * xi * d - 2 * e
    g[-1] = 0
    g[1:] += 200 * d
    return f, g


# -- loops: backpropagation through the same loop, run backwards ---------------------------------
# (The closed forms, like x ** arange for Horner's coefficients, are other algorithms: the bar
# here is the loop an expert writes when the cost is written as a loop.)


def horner_value(c, x):
    p = 0.0
    for i in range(len(c)):
        p = p * x + c[i]
    return p


def horner_value_and_grad(c, x):
    p = 0.0
    ps = []
    for i in range(len(c)):
        ps.append(p)
        p = p * x + c[i]
    dc = np.zeros_like(c)
    dx = 0.0
    dp = 1.0
    for i in reversed(range(len(c))):
        dc[i] = dp
        dx += dp * ps[i]
        dp = dp * x
    return p, (dc, dx)


def rnn_value(Wx, Wh, b, h, X):
    for x_t in X:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
    return 0.5 * (h @ h)


def rnn_value_and_grad(Wx, Wh, b, h, X):
    hs = [h]
    for x_t in X:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
        hs.append(h)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh = h
    for t in reversed(range(len(X))):
        dz = dh * (1 - hs[t + 1] ** 2)
        db += dz
        dWx += np.outer(dz, X[t])
        dWh += np.outer(dz, hs[t])
        dh = Wh.T @ dz
    return 0.5 * (h @ h), (dWx, dWh, db, dh)


def rnn_sequence_value(Wx, Wh, b, h, X, Y):
    J = 0.0
    for t in range(X.shape[0]):
        h = np.tanh(Wx @ X[t] + Wh @ h + b)
        e = h - Y[t]
        J = J + e @ e
    return J


def rnn_sequence_value_and_grad(Wx, Wh, b, h, X, Y):
    hs = [h]
    J = 0.0
    for t in range(X.shape[0]):
        h = np.tanh(Wx @ X[t] + Wh @ h + b)
        hs.append(h)
        e = h - Y[t]
        J = J + e @ e
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh = np.zeros_like(h)
    for t in reversed(range(X.shape[0])):
        dh += 2 * (hs[t + 1] - Y[t])
        dz = dh * (1 - hs[t + 1] ** 2)
        db += dz
        dWx += np.outer(dz, X[t])
        dWh += np.outer(dz, hs[t])
        dh = Wh.T @ dz
    return J, (dWx, dWh, db, dh)


def rnn_states_value(Wx, Wh, b, h, X, Y):
    hs = []
    for x_t in X:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
        hs.append(h)
    E = np.stack(hs) - Y
    return np.sum(E * E)


def rnn_states_value_and_grad(Wx, Wh, b, h, X, Y):
    hs = [h]
    for x_t in X:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
        hs.append(h)
    E = np.stack(hs[1:]) - Y
    dH = 2 * E
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh = np.zeros_like(h)
    for t in reversed(range(len(X))):
        dz = (dh + dH[t]) * (1 - hs[t + 1] ** 2)
        db += dz
        dWx += np.outer(dz, X[t])
        dWh += np.outer(dz, hs[t])
        dh = Wh.T @ dz
    return np.sum(E * E), (dWx, dWh, db, dh)


# -- Huber regression -------------------------------------------------------------------------


def huber_regression_value(w, X, y, delta):
    r = X @ w - y
    a = np.abs(r)
    return np.mean(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)))


def huber_regression_value_and_grad(w, X, y, delta):
    r = X @ w - y
    a = np.abs(r)
    J = np.mean(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)))
    return J, X.T @ np.clip(r, -delta, delta) / len(y)
