def cost(w):
    J = w * 2
    t = J
    del t
    return J
