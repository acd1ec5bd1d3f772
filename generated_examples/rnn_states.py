"""A vanilla RNN written the common way: each hidden state appended to a list, then stacked.

hs.append(h) in the loop and H = np.stack(hs) after it give the (T, H) array of states; the loss
compares it with the targets Y. The backward loop walks the rows of H's adjoint in reverse,
one per step, beside the hidden state's adjoint carried from step to step.
"""

# srcdiff: --wrt Wx,Wh,b,h --shapes "Wx=(H, D), Wh=(H, H), b=(H,), h=(H,), X=(T, D), Y=(T, H)"
import numpy as np


def rnn_states(Wx, Wh, b, h, X, Y):
    hs = []
    for x_t in X:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
        hs.append(h)
    H = np.stack(hs)
    J = np.sum((H - Y) ** 2)
    return J
