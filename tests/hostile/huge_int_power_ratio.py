def cost(w):
    k = 10**400
    J = w * (k / (k * 10)) + w * (10**400 / 10**401)
    return J
