def cost(θ):
    πr = θ * foo(θ)
    return πr
