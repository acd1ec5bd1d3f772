def cost(w):
    J = np.sum(w)
    return J
