def cost(w, tape, dJ_dw, dJ):
    J = w * tape * w + dJ_dw * dJ * w
    return J
