def cost(w):
    J = (t := w * 2) + t
    return J
