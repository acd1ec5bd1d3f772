def cost(w):
    label = "J" + "1"
    return w
