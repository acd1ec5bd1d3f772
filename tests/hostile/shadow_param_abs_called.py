def cost(w, abs):
    J = abs(w)
    return J
