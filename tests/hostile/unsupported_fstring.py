def cost(w):
    label = f"{w}"
    return w
