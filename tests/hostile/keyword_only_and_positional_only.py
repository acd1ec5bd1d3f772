def cost(w, /, b, *, c=2.0):
    J = w * b * c
    return J
