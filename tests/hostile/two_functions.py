import math


def first(x):
    y = x * x
    return y


def second(u, v):
    s = math.sin(u) * v
    return s
