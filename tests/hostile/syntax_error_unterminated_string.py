def cost(w):
    J = w * "abc
    return J
