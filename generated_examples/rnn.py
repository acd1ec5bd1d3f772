"""A vanilla RNN over the rows of X (one time step each), with a loss on the final hidden state.

h_t = tanh(Wx x_t + Wh h_(t-1) + b), from the initial state h; J = |h_T|^2 / 2. The backward
pass is backpropagation through time: one loop over the steps in reverse, the hidden state's
adjoint carried from step to step, the weights' adjoints summed over the steps.
"""

# srcdiff: --wrt Wx,Wh,b,h --shapes "Wx=(H, D), Wh=(H, H), b=(H,), h=(H,), X=(T, D)"
import numpy as np


def rnn(Wx, Wh, b, h, X):
    for x_t in X:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
    J = 0.5 * np.sum(h**2)
    return J
