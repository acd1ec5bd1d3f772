def cost(w, cost_forward):
    J = w * cost_forward
    return J
