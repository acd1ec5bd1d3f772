def cost(w):
    class Box:
        pass
    return w
