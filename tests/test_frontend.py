"""Frontend: source to SSA, and the located errors for everything outside the subset."""

from __future__ import annotations

import pytest

from srcdiff.errors import SrcdiffError
from srcdiff.frontend import load_function
from srcdiff.ir import Const, Var


def prims(src: str, **kw) -> list[tuple[str, str]]:
    fn = load_function(src, **kw)
    return [(n.prim, n.out.name or "") for n in fn.body]


def test_straight_line_lowers_to_one_node_per_operation():
    fn = load_function("def f(w, x):\n    c = w * x\n    J = c**2 / 2\n    return J\n")
    assert [(n.prim, n.out.name) for n in fn.body] == [("mul", "c"), ("pow", None), ("div", "J")]
    assert fn.result is fn.body[-1].out and fn.result_name == "J"
    assert [p.name for p in fn.params] == ["w", "x"]


def test_reassignment_makes_new_ssa_versions():
    fn = load_function("def f(a):\n    a = a + 1\n    a = a * 2\n    return a\n")
    outs = [n.out for n in fn.body]
    assert [(v.name, v.version) for v in outs] == [("a", 1), ("a", 2)]
    assert fn.body[1].args[0] is outs[0]  # the second statement reads the first version
    assert fn.params[0].var is fn.body[0].args[0]


def test_tuple_unpacking_evaluates_all_values_before_binding():
    fn = load_function("def f(a, b):\n    a, b = b, a\n    return a - b\n")
    swap_a, swap_b, sub = fn.body
    assert swap_a.prim == swap_b.prim == "copy"
    assert swap_a.args[0] is fn.params[1].var and swap_b.args[0] is fn.params[0].var
    assert sub.args == (swap_a.out, swap_b.out)


def test_augmented_assignment_and_unary_minus():
    assert prims("def f(x):\n    y = -x\n    y += 2\n    y /= x\n    return y\n") == [
        ("neg", "y"),
        ("add", "y"),
        ("div", "y"),
    ]


def test_negative_literal_is_a_constant():
    fn = load_function("def f(x):\n    return x * -2\n")
    assert fn.body[0].args[1] == Const(-2)


def test_math_spellings_all_reach_the_same_primitive():
    for header, call in [
        ("import math", "math.exp(x)"),
        ("import math as m", "m.exp(x)"),
        ("from math import exp", "exp(x)"),
        ("from math import exp as e", "e(x)"),
    ]:
        src = f"{header}\n\ndef f(x):\n    return {call}\n"
        assert prims(src) == [("exp", "")], header


def test_log_with_base_and_builtins():
    src = "import math\n\ndef f(x, y):\n    return math.log(x, 2) + abs(x) + pow(x, y) + max(x, y, 1.0)\n"
    assert [p for p, _ in prims(src)] == ["logb", "abs", "add", "bpow", "add", "max", "add"]


def test_defaults_and_keyword_only_parameters_are_kept():
    fn = load_function("def f(w, b=0.5, *, lam=-1e-3):\n    return w * b * lam\n")
    assert [(p.name, p.kind, p.default) for p in fn.params] == [
        ("w", "normal", None),
        ("b", "normal", Const(0.5)),
        ("lam", "kwonly", Const(-1e-3)),
    ]


def test_docstring_is_read_not_lowered():
    fn = load_function('def f(x):\n    """Cost."""\n    return x * x\n')
    assert len(fn.body) == 1


def test_used_names_are_the_locals():
    fn = load_function(
        "import math\n\ndef f(x, tape):\n    dJ_dw = math.exp(x)\n    return dJ_dw * tape\n"
    )
    assert fn.used_names == {"x", "tape", "dJ_dw"}


def test_the_only_function_is_chosen_and_others_need_a_name():
    two = "def f(x):\n    return x\n\ndef g(x):\n    return x * 2\n"
    assert load_function(two, function="g").name == "g"
    with pytest.raises(SrcdiffError, match="several functions"):
        load_function(two)
    with pytest.raises(SrcdiffError, match="'h' not found.*f, g"):
        load_function(two, function="h")


@pytest.mark.parametrize(
    "body,line,col,message",
    [
        (
            "    while x > 0:\n        x = x - 1\n        return x\n    return x\n",
            4,
            9,
            "a return inside a loop",
        ),
        ("    if x > 0:\n        return x\n    y = x\n", 4, 5, "does not return a value"),
        ("    y = x % 2\n    return y\n", 2, 9, r"operator % is not supported"),
        ("    return z\n", 2, 12, "name 'z' is not defined"),
        ("    y = q\n    q = x\n    return y\n", 2, 9, "'q' is used before it is assigned"),
        ("    return foo(x)\n", 2, 12, "unknown function 'foo'"),
        ("    return f(x)\n", 2, 12, "recursive call"),
        ("    return max(x)\n", 2, 12, "single iterable"),
        ("    y = x\n", 1, 1, "no return statement"),
        ("    return 'x'\n", 2, 12, "str constant"),
        ("    x[0] = 1\n    return x\n", 2, 5, "assignment to an element"),
    ],
)
def test_unsupported_input_is_located(body, line, col, message):
    with pytest.raises(SrcdiffError, match=message) as err:
        load_function(f"def f(x):\n{body}", filename="cost.py")
    e = err.value
    assert (e.filename, e.line, e.col) == ("cost.py", line, col)
    assert e.source_line is not None
    first = e.format().splitlines()[0]
    assert first.startswith(f"srcdiff: error: cost.py:{line}:{col}: ")


def test_syntax_error_is_located():
    with pytest.raises(SrcdiffError, match="syntax error") as err:
        load_function("def f(x):\n    return x +\n", filename="bad.py")
    assert err.value.line == 2 and err.value.filename == "bad.py"


def test_unicode_identifiers_keep_their_names():
    fn = load_function("def f(α):\n    β = α * α\n    return β\n")
    assert isinstance(fn.result, Var) and fn.result.name == "β"


@pytest.mark.parametrize(
    "body",
    [
        "    x += w\n    return np.sum(x)\n",  # a parameter: the caller's array
        "    a = x\n    a *= w\n    return np.sum(a)\n",  # an alias of the parameter
    ],
)
def test_in_place_writes_to_arrays_the_function_did_not_create_are_refused(body):
    with pytest.raises(SrcdiffError, match="in-place writes") as err:
        load_function(f"import numpy as np\n\n\ndef f(x, w):\n{body}", filename="c.py")
    assert "x = x + ..." in err.value.format() or "a = a * ..." in err.value.format()


def test_augmented_assignment_to_a_fresh_array_is_a_new_value():
    fn = load_function(
        "import numpy as np\n\n\ndef f(x, w):\n    a = x * w\n    a += w\n    return np.sum(a)\n"
    )
    assert [(n.prim, n.out.name, n.out.version) for n in fn.body[:2]] == [
        ("mul", "a", 0),
        ("add", "a", 1),
    ]


def test_element_assignment_suggests_the_rewrite():
    with pytest.raises(SrcdiffError, match="in-place write") as err:
        load_function("import numpy as np\n\n\ndef f(x):\n    x[0] = 1.0\n    return np.sum(x)\n")
    assert "np.where" in err.value.format()
