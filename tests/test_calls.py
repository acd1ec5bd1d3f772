"""Calls to functions of the same file: one forward/backward pair per called function.

Checked against central differences and, for scalar code, against sympy differentiating the
inlined expression; plus the structure of the output and the errors (recursion, bad arguments).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from test_numpy import plain

from srcdiff.api import compile_source, load_generated
from srcdiff.check import check_gradient
from srcdiff.errors import SrcdiffError

ROOT = Path(__file__).resolve().parent.parent

TWO_LAYER = """\
import numpy as np


def layer(x, W, b):
    return np.tanh(W @ x + b)


def loss(p, y):
    return np.sum((p - y) ** 2) / 2


def model(W1, b1, W2, b2, x, y):
    h = layer(x, W1, b1)
    p = layer(h, W2, b2)
    return loss(p, y)
"""


def generated(source: str, wrt: str, function: str, **kw):
    gen = compile_source(source, wrt, function=function, **kw)
    return load_generated(gen.text, "calls_case"), gen.text


def check(source: str, wrt: str, function: str, args: dict) -> str:
    module, text = generated(source, wrt, function)
    report = check_gradient(
        plain(source, function), getattr(module, f"{function}_value_and_grad"), args, wrt.split(",")
    )
    assert report.passed, text + report.format()
    return text


def two_layer_args(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return dict(
        W1=rng.normal(size=(4, 3)),
        b1=rng.normal(size=4),
        W2=rng.normal(size=(2, 4)),
        b2=rng.normal(size=2),
        x=rng.normal(size=3),
        y=rng.normal(size=2),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_layer_model_gradient_checks(seed):
    check(TWO_LAYER, "W1,b1,W2,b2", "model", two_layer_args(seed))


def test_each_called_function_has_one_forward_backward_pair():
    _, text = generated(TWO_LAYER, "W1,b1,W2,b2", "model")
    for name in ("layer", "loss", "model"):
        assert text.count(f"\ndef {name}_forward(") == 1
        assert text.count(f"\ndef {name}_backward(") == 1
    assert "def layer_grad(" not in text  # only the differentiated function gets _grad
    backward = text.split("def model_backward", 1)[1].split("\ndef ", 1)[0]
    assert "dmodel_dh, dmodel_dW2, dmodel_db2 = layer_backward(layer_tape_, dmodel_dp)" in backward
    assert "_, dmodel_dW1, dmodel_db1 = layer_backward(layer_tape, dmodel_dh)" in backward
    assert "unbroadcast" not in backward  # a called function's gradients fit already
    forward = text.split("def model_forward", 1)[1].split("\ndef ", 1)[0]
    assert "h, layer_tape = layer_forward(x, W1, b1)" in forward


def test_keyword_arguments_and_defaults():
    source = (
        "import math\n\n\n"
        "def scaled(v, k=2.0, shift=0.5):\n    return k * math.sin(v) + shift\n\n\n"
        "def f(a, b):\n    return scaled(b, shift=a) * scaled(k=a, v=a * b)\n"
    )
    check(source, "a,b", "f", {"a": 0.7, "b": -1.3})


def test_nested_calls_and_a_function_called_from_two_callers():
    source = (
        "import math\n\n\n"
        "def inner(u, c):\n    return math.exp(c * u)\n\n\n"
        "def middle(v, c):\n    return inner(v, c) + inner(c, v) * v\n\n\n"
        "def f(a, b, c):\n    return middle(a * b, c) + inner(a, 0.5)\n"
    )
    text = check(source, "a,b", "f", {"a": 0.3, "b": 0.8, "c": 1.1})
    assert text.count("\ndef inner_backward(") == 1
    # inner's u and c both receive active values somewhere: its backward returns both
    assert "return dinner_du, dinner_dc" in text


def test_a_call_on_data_only_needs_no_backward():
    source = (
        "import math\n\n\n"
        "def g(u):\n    return math.cos(u)\n\n\n"
        "def f(w, x):\n    return w * g(x)\n"
    )
    text = check(source, "w", "f", {"w": 0.4, "x": 0.9})
    assert "g_forward(x)[0]" in text
    assert "g_backward(" not in text.split("def f_backward", 1)[1]


def test_a_result_used_twice_sums_its_gradients():
    source = (
        "import math\n\n\n"
        "def sq(u):\n    return u * u\n\n\n"
        "def f(w):\n    s = sq(w)\n    return s * math.sin(s) + sq(s)\n"
    )
    check(source, "w", "f", {"w": 0.6})


def test_scalar_model_matches_sympy():
    w1, b1, w2, b2, x, y = sp.symbols("w1 b1 w2 b2 x y")
    inlined = (sp.tanh(w2 * sp.tanh(w1 * x + b1) + b2) - y) ** 2 / 2
    at = {w1: 0.5, b1: 0.1, w2: -1.5, b2: 0.2, x: 2, y: 0.3}
    module = load_generated(
        (ROOT / "generated_examples" / "neuron_model_grad.py").read_text(), "nm"
    )
    value, grads = module.model_value_and_grad(0.5, 0.1, -1.5, 0.2, 2, 0.3)
    assert value == pytest.approx(float(inlined.subs(at)), rel=1e-14)
    for g, s in zip(grads, (w1, b1, w2, b2)):
        assert g == pytest.approx(float(sp.diff(inlined, s).subs(at)), rel=1e-13)


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f(x):\n    return f(x) * 2\n", "recursive call to 'f'"),
        (
            "def g(x):\n    return h(x)\n\n\ndef h(x):\n    return g(x) + 1\n\n\n"
            "def f(x):\n    return g(x)\n",
            "recursive calls are not supported (f -> g -> h -> g)",
        ),
        ("def g(u):\n    return u\n\n\ndef f(x):\n    return g(x, x)\n", "g() takes 1 arguments"),
        ("def g(u):\n    return u\n\n\ndef f(x):\n    return g(v=x)\n", "g() has no parameter 'v'"),
        (
            "def g(u, v):\n    return u * v\n\n\ndef f(x):\n    return g(x)\n",
            "missing the argument 'v'",
        ),
        (
            "def g(u):\n    return u\n\n\ndef f(x):\n    return g(x, u=x)\n",
            "g() got 'u' twice",
        ),
    ],
)
def test_bad_calls_are_located_errors(source, message):
    with pytest.raises(SrcdiffError) as e:
        compile_source(source, "x", function="f", filename="bad.py")
    assert message in e.value.message
    assert e.value.line is not None and e.value.filename == "bad.py"


def test_changing_a_called_function_makes_the_module_stale(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(TWO_LAYER)
    run = [sys.executable, "-m", "srcdiff"]
    subprocess.run([*run, str(src), "--function", "model", "--wrt", "W1"], check=True)
    assert subprocess.run([*run, "verify", str(tmp_path)]).returncode == 0
    src.write_text(TWO_LAYER.replace("np.tanh(W @ x + b)", "np.tanh(W @ x - b)"))
    proc = subprocess.run([*run, "verify", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1 and "changed since it was generated" in proc.stdout + proc.stderr


def test_output_is_deterministic():
    first = compile_source(TWO_LAYER, "W1,b1,W2,b2", function="model").text
    assert compile_source(TWO_LAYER, "W1,b1,W2,b2", function="model").text == first
    assert math.isfinite(len(first))


# ---- --include: functions of other files -----------------------------------------------------

HELPERS = "import math\n\n\ndef layer(x, w):\n    return math.tanh(w * x)\n"


def cli(tmp_path, *argv):
    return subprocess.run(
        [sys.executable, "-m", "srcdiff", *argv], cwd=tmp_path, capture_output=True, text=True
    )


def test_include_makes_another_files_functions_callable(tmp_path):
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "main.py").write_text(
        "from helpers import layer\nfrom helpers import layer as dense\n\n\n"
        "def f(w, x):\n    return layer(x, w) ** 2 + dense(w, x)\n"
    )
    proc = cli(tmp_path, "main.py", "--wrt", "w", "--include", "helpers.py", "--check")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "main_grad.py").read_text()
    assert "# Regenerate: srcdiff main.py --function f --wrt w --include helpers.py" in text
    assert text.count("\ndef layer_backward(") == 1 and "import helpers" not in text
    assert cli(tmp_path, "verify", ".").returncode == 0
    (tmp_path / "helpers.py").write_text(HELPERS.replace("w * x", "w * x + 1"))
    proc = cli(tmp_path, "verify", ".")
    assert proc.returncode == 1 and "(or a file it includes) changed" in proc.stdout + proc.stderr


def test_include_errors(tmp_path):
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "main.py").write_text(
        "def layer(x, w):\n    return x\n\n\ndef f(w):\n    return layer(w, w)\n"
    )
    proc = cli(tmp_path, "main.py", "--function", "f", "--wrt", "w", "--include", "helpers.py")
    assert proc.returncode == 2 and "is also defined in main.py" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = cli(tmp_path, "main.py", "--function", "f", "--wrt", "w", "--include", "nowhere.py")
    assert proc.returncode == 2 and "nowhere.py" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "main_grad.py").exists()
    # without --include, the call names an unknown function and the hint says what to do
    (tmp_path / "user.py").write_text(
        "from helpers import layer\n\n\ndef f(w):\n    return layer(w, w)\n"
    )
    proc = cli(tmp_path, "user.py", "--wrt", "w")
    assert proc.returncode == 2 and "--include" in proc.stderr


# ---- declared shapes carry over to called functions --------------------------------------------

SHAPES = "W1=(h, d), b1=(h,), W2=(k, h), b2=(k,), x=(d,), y=(k,)"


def test_shapes_carry_over_when_every_call_site_agrees():
    module, text = generated(TWO_LAYER, "W1,b1,W2,b2", "model", shapes=SHAPES)
    layer = text.split("def layer_backward", 1)[1].split("\ndef ", 1)[0]
    assert "np.outer(dlayer_dW_x_b, x)" in layer and "W.T @ dlayer_dW_x_b" in layer
    assert "matmul_grad" not in text and "unbroadcast(" not in layer
    args = two_layer_args(3)
    report = check_gradient(
        plain(TWO_LAYER, "model"), module.model_value_and_grad, args, ["W1", "b1", "W2", "b2"]
    )
    assert report.passed, report.format()


def test_call_sites_that_disagree_keep_the_generic_code():
    source = TWO_LAYER.replace(
        "p = layer(h, W2, b2)", "p = layer(h[:, None], W2, b2[:, None])[:, 0]"
    )
    shapes = "W1=(h, d), b1=(h,), W2=(k, h), b2=(k,), x=(d,), y=(k,)"
    module, text = generated(source, "W1,b1,W2,b2", "model", shapes=shapes)
    assert "matmul_grad_a(" in text.split("def layer_backward", 1)[1].split("\ndef ", 1)[0]
    args = two_layer_args(4)
    report = check_gradient(
        plain(source, "model"), module.model_value_and_grad, args, ["W1", "b1", "W2", "b2"]
    )
    assert report.passed, report.format()
