"""A 2-layer MLP on a batch: relu hidden layer, softmax cross-entropy, mean over the batch.

X (m, d) holds one sample per row and y (m,) its integer class labels; W1 (d, h), b1 (h,),
W2 (h, k) and b2 (k,) are the weights. The row maximum is subtracted from the logits before
np.exp so that it cannot overflow (this changes nothing in the loss), and the log-probability
of each sample's correct class is picked with [np.arange(m), y].
"""

# srcdiff: --wrt W1,b1,W2,b2 --shapes "W1=(d, h), b1=(h,), W2=(h, k), b2=(k,), X=(m, d), y=(m,)"
import numpy as np


def loss(W1, b1, W2, b2, X, y):
    m = X.shape[0]
    h = np.maximum(X @ W1 + b1, 0)
    logits = h @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    J = -np.mean(log_probs[np.arange(m), y])
    return J
