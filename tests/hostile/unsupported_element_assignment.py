def cost(w, x):
    x[0] = w
    J = w * 2
    return J
