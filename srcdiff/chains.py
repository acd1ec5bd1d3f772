"""Elementwise chains, differentiated as one expression and simplified with sympy.

Rule-by-rule differentiation of the mean cross-entropy of a sigmoid computes
``(-y / p + (1 - y) / (1 - p)) * p * (1 - p)``: several passes over an array of a million rows,
where an expert writes ``p - y``. Here a maximal chain of elementwise operations (whose inner
values feed only the chain) becomes one sympy expression; its derivative with respect to each
input is rewritten in terms of the values the forward pass already stored, the inner values are
eliminated in favour of outer ones where their relation can be inverted (``exp(-z) = (1 - p) / p``
from ``p = 1 / (1 + exp(-z))``), and the cheapest form by operation count is kept. When nothing is
cheaper than the rules, the chain is differentiated rule by rule as usual.

Used for NumPy code, where each operation is a pass over an array; scalar code keeps its
statement-by-statement backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .ir import Atom, Const, Function, Node, Var


class Sigmoid(sp.Function):
    """``1 / (1 + exp(-u))``, kept whole: written out, ``exp(u) / (1 + exp(u))`` overflows to NaN for
    large ``u``. It is printed as ``np.exp(a - L)`` from a stored ``L = np.logaddexp(a, b)``
    with ``u = a - b`` (``a - L <= 0``: no overflow). ``sigmoid(-u)`` is ``1 - sigmoid(u)``, which
    is what lets ``-y * sigmoid(-z) + (1 - y) * sigmoid(z)`` simplify to ``sigmoid(z) - y``."""

    @classmethod
    def eval(cls, u):
        if u.could_extract_minus_sign():
            return 1 - cls(-u)
        return None

    def fdiff(self, argindex=1):
        return self * (1 - self)


class LogAddExp(sp.Function):
    """``np.logaddexp(a, b) = log(exp(a) + exp(b))``, kept whole for the same reason."""

    def fdiff(self, argindex=1):
        a, b = self.args
        return Sigmoid(a - b) if argindex == 1 else Sigmoid(b - a)


# Elementwise primitives sympy can express, as functions of their arguments.
SYMPY_FORMS = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "pow": lambda x, y: x**y,
    "np.power": lambda x, y: x**y,
    "neg": lambda x: -x,
    "np.negative": lambda x: -x,
    "np.exp": sp.exp,
    "np.log": sp.log,
    "np.sqrt": sp.sqrt,
    "np.square": lambda x: x**2,
    "np.tanh": sp.tanh,
    "np.sin": sp.sin,
    "np.cos": sp.cos,
    "np.log1p": lambda x: sp.log(1 + x),
    "np.expm1": lambda x: sp.exp(x) - 1,
    "np.logaddexp": LogAddExp,
}
# sympy functions back to primitives, for the simplified derivative.
FROM_SYMPY = {
    sp.exp: "np.exp",
    sp.log: "np.log",
    sp.tanh: "np.tanh",
    sp.sin: "np.sin",
    sp.cos: "np.cos",
}
MAX_CHAIN = 40  # keep sympy's work small and predictable


@dataclass
class Chain:
    """A set of forward nodes computing one value from inputs through elementwise operations."""

    output: Node
    nodes: list[Node]  # forward order
    inputs: list[Var]
    derivatives: dict[Var, sp.Expr] = field(default_factory=dict)  # input -> d output / d input
    symbols: dict[sp.Symbol, Var] = field(default_factory=dict)  # symbol -> forward value
    # Values of np.logaddexp the forward pass computed, by their arguments: sigmoids read them.
    logaddexps: dict[tuple[sp.Expr, sp.Expr], Var] = field(default_factory=dict)


def find_chains(fn: Function, active: set[Var]) -> list[Chain]:
    """Maximal elementwise chains of at least three active nodes, largest first."""
    consumers: dict[Var, list[Node]] = {}
    for node in fn.body:
        for a in node.args:
            if isinstance(a, Var):
                consumers.setdefault(a, []).append(node)
    index = {id(n): i for i, n in enumerate(fn.body)}
    elementwise_outputs = {n.out for n in fn.body if n.prim in SYMPY_FORMS}
    taken: set[int] = set()
    chains = []
    for node in reversed(fn.body):
        if id(node) in taken or node.prim not in SYMPY_FORMS or node.out not in active:
            continue
        members = {id(node)}
        for d in reversed(fn.body[: index[id(node)]]):
            if len(members) >= MAX_CHAIN:
                break
            # Data-only steps (1 - y) join too: sympy must see them to simplify.
            if d.prim not in SYMPY_FORMS or id(d) in taken or d.out is fn.result:
                continue
            users = consumers.get(d.out, [])
            # A step combining several active values from outside (z = X @ w + b) starts the chain
            # rather than joining it: the chain is then a function of its pre-activation z, which
            # is what lets a stored value be solved for it (see _rewrite).
            if _joins_inputs(d, active, elementwise_outputs):
                continue
            if users and all(id(u) in members for u in users):
                members.add(id(d))
        if len(members) < 3 or _joins_inputs(node, active, elementwise_outputs):
            continue
        nodes = [n for n in fn.body if id(n) in members]
        produced = {n.out for n in nodes}
        inputs = list(
            dict.fromkeys(
                a for n in nodes for a in n.args if isinstance(a, Var) and a not in produced
            )
        )
        taken |= members
        chains.append(Chain(node, nodes, inputs))
    return chains


def _joins_inputs(node: Node, active: set[Var], elementwise_outputs: set[Var]) -> bool:
    active_args = [a for a in node.args if isinstance(a, Var) and a in active]
    return len(active_args) > 1 and not any(a in elementwise_outputs for a in active_args)


def simplify_chain(chain: Chain, active: set[Var]) -> bool:
    """Fill ``chain.derivatives`` with simplified forms; False if the rules are as cheap."""
    symbol_of: dict[Var, sp.Symbol] = {}
    expr_of: dict[Var, sp.Expr] = {}

    def sym(v: Var) -> sp.Symbol:
        if v not in symbol_of:
            s = sp.Symbol(f"v{len(symbol_of)}", real=True)
            symbol_of[v] = s
            chain.symbols[s] = v
        return symbol_of[v]

    def as_expr(a: Atom) -> sp.Expr:
        if isinstance(a, Const):
            return (
                sp.Float(a.value)
                if isinstance(a.value, float) and not float(a.value).is_integer()
                else sp.Integer(int(a.value))
            )
        return expr_of.get(a, sym(a))

    for n in chain.nodes:
        expr_of[n.out] = SYMPY_FORMS[n.prim](*(as_expr(a) for a in n.args))
        if n.prim == "np.logaddexp":
            chain.logaddexps[tuple(as_expr(a) for a in n.args)] = n.out  # type: ignore[index]
    total = expr_of[chain.output.out]
    gain = False
    for x in chain.inputs:
        if x not in active:
            continue
        raw = sp.diff(total, sym(x))
        best, candidates = _rewrite(raw, chain, expr_of, sym, active)
        if best is None:
            return False
        chain.derivatives[x] = best
        gain = gain or _cost(best, chain) < _cost(candidates[0], chain)
    return gain


def _cost(c: sp.Expr, chain: Chain) -> tuple[int, int]:
    """Operations, plus one for each stored array the form reads (a read, and memory to keep it)."""
    reads = len(c.free_symbols & set(chain.symbols))
    return sp.count_ops(c) + reads, sp.count_ops(c)


MAX_SOLVE_OPS = 8  # the largest stored expression solved for a chain input (see _rewrite)
INVERTIBLE = (sp.exp, sp.log, sp.tanh)  # the functions such an expression may apply


def _rewrite(
    raw: sp.Expr, chain: Chain, expr_of: dict[Var, sp.Expr], sym, active: set[Var]
) -> tuple[sp.Expr | None, list[sp.Expr]]:
    """The derivative in the cheapest form found, in terms of values the forward pass stored.

    Candidates: the derivative as the rules give it, with stored values standing for their
    expressions; and, for each stored value ``v = E(u)`` that can be solved for the chain's
    active input ``u``, the derivative with ``u`` written as ``E^-1(v)`` (for the sigmoid
    ``p = 1 / (1 + exp(-u))`` this turns ``y - 1 / (1 + exp(-u))`` into ``y - p``).
    """
    plain = raw
    for n in reversed(chain.nodes):  # the outermost stored value first, so the largest match wins
        plain = plain.subs(expr_of[n.out], sym(n.out))
    candidates = [sp.cancel(plain)]
    # Simplified before the stored values stand in: y * s - y + (1 - y) * s is s - y only while
    # (1 - y) is still visible as such.
    simple = sp.cancel(sp.expand(raw))
    candidates.append(simple)  # in the chain's inputs alone
    for n in reversed(chain.nodes):
        simple = simple.subs(expr_of[n.out], sym(n.out))
    candidates.append(simple)
    # Only active inputs: solving for another one is of no use, and sympy may never return
    # (W_1 = exp(tanh(s + 0.5)) * W solved for s grows without bound).
    active_inputs = [
        s
        for s in raw.free_symbols
        if s in chain.symbols and chain.symbols[s] in chain.inputs and chain.symbols[s] in active
    ]
    for u in active_inputs:
        for n in chain.nodes:
            e = expr_of[n.out]
            # Only values the user named and computed through a transcendental function are worth
            # solving for (an expert writes the derivative in them); sympy's solve is slow.
            if not e.has(u) or e == u or not e.has(sp.exp, sp.tanh, sp.log) or not n.out.is_user:
                continue
            # An inverse worth writing reads u once, through a few steps (the sigmoid's
            # 1 / (1 + exp(-u))); past that sympy may search for minutes and find none.
            if e.count(u) > 1 or sp.count_ops(e) > MAX_SOLVE_OPS:
                continue
            if any(f.func not in INVERTIBLE for f in e.atoms(sp.Function)) or any(
                not p.exp.is_Number for p in e.atoms(sp.Pow)
            ):
                continue
            # tanh(0.0707 * v + u) is solved through exp(2 * 0.0707 * v): a polynomial whose
            # degree is that float's denominator as a fraction. Only whole numbers, then.
            if any(not f.is_integer for f in e.atoms(sp.Float)):
                continue
            try:
                solved = sp.solve(sp.Eq(sym(n.out), e), u, dict=False, check=False, simplify=False)
            except (NotImplementedError, ValueError, TypeError):
                continue
            if len(solved) != 1:
                continue
            c = sp.cancel(raw.subs(u, solved[0]))
            if not c.has(sp.log) or raw.has(sp.log):
                candidates.append(c)

    def cost(c: sp.Expr) -> tuple[int, int]:
        return _cost(c, chain)

    best = min(candidates, key=cost)
    factored = sp.factor(best)
    if cost(factored) < cost(best):
        best = factored
    return best, [plain]  # the derivative as the rules compose it: what the best must beat


def to_ir(expr: sp.Expr, chain: Chain, emit) -> Atom:
    """A simplified derivative back as primitive nodes (``emit(prim, args)`` makes one)."""
    if isinstance(expr, sp.Symbol):
        return chain.symbols[expr]
    if expr.is_Integer:
        return Const(int(expr))
    if expr.is_Rational:
        return emit("div", (Const(int(expr.p)), Const(int(expr.q))))
    if expr.is_Float:
        return Const(float(expr))
    if isinstance(expr, sp.Add):
        terms = list(expr.as_ordered_terms())
        # a positive term first reads best: y - p rather than -p + y
        terms.sort(key=lambda t: t.could_extract_minus_sign())
        acc = to_ir(terms[0], chain, emit)
        for t in terms[1:]:
            if t.could_extract_minus_sign():
                acc = emit("sub", (acc, to_ir(-t, chain, emit)))
            else:
                acc = emit("add", (acc, to_ir(t, chain, emit)))
        return acc
    if isinstance(expr, sp.Mul):
        if expr.could_extract_minus_sign():
            return emit("neg", (to_ir(-expr, chain, emit),))
        num, den = [], []
        for f in expr.as_ordered_factors():
            base, exp = f.as_base_exp()
            if exp.is_Integer and exp < 0:
                den.append(base if exp == -1 else base ** (-exp))
            else:
                num.append(f)
        acc = to_ir(num[0], chain, emit) if num else Const(1)
        for f in num[1:]:
            acc = emit("mul", (acc, to_ir(f, chain, emit)))
        if den:
            d = to_ir(den[0], chain, emit)
            for f in den[1:]:
                d = emit("mul", (d, to_ir(f, chain, emit)))
            acc = emit("div", (acc, d))
        return acc
    if isinstance(expr, sp.Pow):
        base, exp = expr.as_base_exp()
        if exp == sp.Rational(1, 2):
            return emit("np.sqrt", (to_ir(base, chain, emit),))
        if exp.is_Integer and exp < 0:
            return emit("div", (Const(1), to_ir(base ** (-exp), chain, emit)))
        return emit("pow", (to_ir(base, chain, emit), to_ir(exp, chain, emit)))
    if isinstance(expr, Sigmoid):
        return _sigmoid(expr.args[0], chain, emit)
    if isinstance(expr, LogAddExp):
        return emit("np.logaddexp", tuple(to_ir(a, chain, emit) for a in expr.args))
    for fn, prim in FROM_SYMPY.items():
        if isinstance(expr, fn):
            return emit(prim, tuple(to_ir(a, chain, emit) for a in expr.args))
    raise ValueError(f"no primitive for {expr}")


def _sigmoid(u: sp.Expr, chain: Chain, emit) -> Atom:
    """``sigmoid(u)`` as ``np.exp(a - L)`` for a stored ``L = np.logaddexp(a, b)`` with
    ``u = a - b``; without one, as ``np.exp(u - np.logaddexp(0, u))``. Both never overflow."""
    for (a, b), stored in chain.logaddexps.items():
        for first, second in ((a, b), (b, a)):
            if sp.expand(first - second - u) == 0:
                return emit("np.exp", (emit("sub", (to_ir(first, chain, emit), stored)),))
    x = to_ir(u, chain, emit)
    return emit("np.exp", (emit("sub", (x, emit("np.logaddexp", (Const(0), x)))),))
