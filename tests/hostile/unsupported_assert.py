def cost(w):
    J = w * 2
    assert J > 0
    return J
