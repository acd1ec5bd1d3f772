def cost(w, b)
    J = w * b
    return J
