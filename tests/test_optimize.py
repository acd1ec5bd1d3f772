"""Each optimization pass on its own, with the before/after example from its docstring."""

from __future__ import annotations

from helpers import COST

from srcdiff.frontend import load_function
from srcdiff.ir import Const, Function, GradProgram, Node, Param, Var
from srcdiff.irtext import format_program
from srcdiff.optimize import (
    eliminate_common_subexpressions,
    eliminate_dead_code,
    fold_constants,
    normalize_products,
    optimize,
    propagate_copies,
    select_tape,
    simplify_identities,
    subtract_negations,
)
from srcdiff.reverse import reverse


def program(
    forward: list[Node], backward: list[Node], params: list[Var], result: Var, seed: Var, grads
):
    fn = Function("f", [Param(p.name, p) for p in params], forward, result, result.name or "f")
    return GradProgram(fn, [p.name for p in params], forward, backward, seed, grads)


def setup():
    w, x = Var("w"), Var("x")
    J = Var("J")
    seed = Var(hint="dJ", adjoint_of=J)
    return w, x, J, seed


def test_fold_constants():
    w, x, J, seed = setup()
    t, u = Var(), Var(adjoint_of=w)
    prog = program(
        [Node(J, "pow", (w, Const(2)))],
        [Node(t, "sub", (Const(2), Const(1))), Node(u, "pow", (w, t))],
        [w],
        J,
        seed,
        [u],
    )
    out = fold_constants(prog)
    assert [(n.prim, n.args) for n in out.backward] == [("pow", (w, Const(1)))]


def test_simplify_identities_keeps_named_values_as_copies():
    w, x, J, seed = setup()
    t, u, v = Var(), Var(), Var(adjoint_of=w)
    prog = program(
        [Node(J, "mul", (w, x))],
        [Node(t, "mul", (seed, Const(1))), Node(u, "pow", (x, Const(1))), Node(v, "mul", (t, u))],
        [w, x],
        J,
        seed,
        [v, Const(0.0)],
    )
    out = simplify_identities(prog)
    assert [(n.out, n.prim, n.args) for n in out.backward] == [(v, "mul", (seed, x))]
    # a named adjoint that simplifies to a plain value survives as a copy
    named = Var(adjoint_of=w)
    prog2 = program(
        [Node(J, "mul", (w, x))], [Node(named, "mul", (seed, Const(1)))], [w], J, seed, [named]
    )
    assert [(n.prim, n.args) for n in simplify_identities(prog2).backward] == [("copy", (seed,))]


def test_normalize_products_folds_the_coefficient():
    w, x, J, seed = setup()
    t, u, v = Var(), Var(), Var(adjoint_of=w)
    prog = program(
        [Node(J, "div", (w, Const(2)))],
        [Node(t, "div", (seed, Const(2))), Node(u, "mul", (Const(2), w)), Node(v, "mul", (t, u))],
        [w],
        J,
        seed,
        [v],
    )
    out = eliminate_dead_code(normalize_products(prog))
    assert [(n.out, n.prim, n.args) for n in out.backward] == [(v, "mul", (seed, w))]


def test_subtract_negations():
    w, x, J, seed = setup()
    a, t, u, s = Var(adjoint_of=x), Var(), Var(), Var(adjoint_of=w)
    prog = program(
        [Node(J, "mul", (w, x))],
        [
            Node(a, "mul", (seed, w)),
            Node(t, "neg", (seed,)),
            Node(u, "mul", (t, x)),
            Node(s, "add", (a, u)),
        ],
        [w, x],
        J,
        seed,
        [s],
    )
    out = eliminate_dead_code(subtract_negations(prog))
    assert [(n.prim, n.args) for n in out.backward] == [
        ("mul", (seed, w)),
        ("mul", (seed, x)),
        ("sub", (a, u)),
    ]


def test_propagate_copies_only_drops_anonymous_copies():
    w, x, J, seed = setup()
    t, u = Var(), Var(adjoint_of=w)
    prog = program(
        [Node(J, "mul", (w, x))],
        [Node(t, "copy", (seed,)), Node(u, "mul", (t, x))],
        [w],
        J,
        seed,
        [u],
    )
    out = propagate_copies(prog)
    assert [(n.prim, n.args) for n in out.backward] == [("mul", (seed, x))]


def test_cse_reuses_forward_values():
    w, x, J, seed = setup()
    s, t, u = Var(), Var(), Var(adjoint_of=w)
    prog = program(
        [Node(s, "mul", (x, x)), Node(J, "div", (w, s))],
        [Node(t, "mul", (x, x)), Node(u, "div", (seed, t))],
        [w, x],
        J,
        seed,
        [u],
    )
    out = select_tape(eliminate_common_subexpressions(prog))
    assert [(n.prim, n.args) for n in out.backward] == [("div", (seed, s))]
    assert out.tape == [s]


def test_dead_code_goes_from_both_sweeps():
    fn = load_function(
        "import math\n\ndef f(w):\n    a = w * 2\n    unused = math.exp(w)\n    J = a * a\n    return J\n"
    )
    prog = optimize(reverse(fn, ["w"]))
    assert [n.out.name for n in prog.forward] == ["a", "J"]


def test_pipeline_ir_golden():
    text = format_program(optimize(reverse(load_function(COST), ["w", "b"])))
    assert text.splitlines() == [
        "forward cost(w, b, x, y):",
        "    c = mul(w, x)                         # line 2: c = w * x",
        "    a = add(c, b)                         # line 3: a = c + b",
        "    d = sub(a, y)                         # line 4: d = a - y",
        "    d_sq = pow(d, 2)                      # line 5: J = d**2 / 2",
        "    J = div(d_sq, 2)                      # line 5: J = d**2 / 2",
        "    return J",
        "backward (upstream gradient dJ), --wrt w,b:",
        "    dJ_dd = mul(dJ, d)                    # line 5: J = d**2 / 2",
        "    dJ_da = copy(dJ_dd)                   # line 4: d = a - y",
        "    dJ_dc = copy(dJ_da)                   # line 3: a = c + b",
        "    dJ_db = copy(dJ_da)                   # line 3: a = c + b",
        "    dJ_dw = mul(dJ_dc, x)                 # line 2: c = w * x",
        "    return dJ_dw, dJ_db",
        "tape: x, d",
    ]


def test_merge_equal_terms_counts_repeated_terms():
    from srcdiff.optimize import merge_equal_terms

    w, x, J, seed = setup()
    a, b = Var(adjoint_of=x), Var(adjoint_of=J)
    t, s = Var(), Var(adjoint_of=w)
    prog = program(
        [Node(J, "mul", (w, x))],
        [
            Node(a, "mul", (seed, x)),
            Node(b, "mul", (seed, w)),
            Node(t, "add", (a, b)),
            Node(s, "add", (t, a)),
        ],
        [w],
        J,
        seed,
        [s],
    )
    out = eliminate_dead_code(merge_equal_terms(prog))
    final = out.backward[-1]
    assert final.out is s and final.prim == "add"
    doubled = next(n for n in out.backward if n.out is final.args[0])
    assert (doubled.prim, doubled.args) == ("mul", (a, Const(2)))
    assert final.args[1] is b
