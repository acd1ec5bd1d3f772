def cost(w):
    label = "j".upper()
    return w
