def cost(w, abs, max):
    J = w * abs - max * w * w + min(w, 2.0)
    return J
