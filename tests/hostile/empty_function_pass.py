def cost(w):
    pass
