def cost(ﬁ, x):
    J = fi * fi * x
    return J
