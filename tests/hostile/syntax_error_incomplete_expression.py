def cost(w):
    J = w +
    return J
