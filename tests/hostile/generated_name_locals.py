import math


def cost(w, x):
    cost_grad = w * x
    tape = math.sin(cost_grad)
    cost_forward = tape * w
    dJ_dw = cost_forward + w
    J = dJ_dw * tape
    return J
