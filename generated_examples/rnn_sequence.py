"""A vanilla RNN with a loss at every time step: the squared distance of h_t to the target Y[t].

Written with a counter over range(T) and an accumulator J carried through the loop, so the
backward loop carries two adjoints: the hidden state's and the accumulator's.
"""

# srcdiff: --wrt Wx,Wh,b,h --shapes "Wx=(H, D), Wh=(H, H), b=(H,), h=(H,), X=(T, D), Y=(T, H)"
import numpy as np


def rnn_loss(Wx, Wh, b, h, X, Y):
    J = 0.0
    for t in range(X.shape[0]):
        h = np.tanh(Wx @ X[t] + Wh @ h + b)
        J = J + np.sum((h - Y[t]) ** 2)
    return J
