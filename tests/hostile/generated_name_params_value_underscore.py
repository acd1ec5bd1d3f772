def cost(w, value, _):
    J = w * value * _ * w
    return J
