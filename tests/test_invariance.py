"""Shift invariance: the row maximum subtracted before a softmax gets no gradient, and only then."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_numpy import plain

from srcdiff.api import compile_source, load_generated
from srcdiff.check import check_gradient
from srcdiff.frontend import load_function
from srcdiff.invariance import shift_invariant_edges

EXAMPLE = Path(__file__).resolve().parent.parent / "generated_examples" / "mlp.py"
HEAD = "import numpy as np\n\n\ndef f(x, c):\n"

INVARIANT = {
    "log_softmax": (
        "    s = x - x.max(axis=1, keepdims=True)\n"
        "    lp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))\n"
        "    return np.sum(lp * c)\n"
    ),
    "softmax": (
        "    e = np.exp(x - np.max(x, axis=-1, keepdims=True))\n"
        "    p = e / np.sum(e, axis=-1, keepdims=True)\n"
        "    return np.sum(p * c)\n"
    ),
    "softmax_min_shift_scaled": (  # any row constant: the minimum, with a factor on the way
        "    s = 2.0 * (x - x.min(axis=1, keepdims=True))\n"
        "    e = np.exp(s)\n"
        "    return np.sum(np.log(e / e.mean(axis=1, keepdims=True)) * c)\n"
    ),
}

NOT_INVARIANT = {
    "sum_of_shifted": "    return np.sum((x - x.max(axis=1, keepdims=True)) * c)\n",
    "logsumexp": (  # the max is added back: the edge into the subtraction does carry gradient
        "    m = x.max(axis=1, keepdims=True)\n"
        "    return np.sum((m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))) * c)\n"
    ),
    "other_axis": (
        "    s = x - x.max(axis=1, keepdims=True)\n"
        "    lp = s - np.log(np.exp(s).sum(axis=0, keepdims=True))\n"
        "    return np.sum(lp * c)\n"
    ),
    "square": "    return np.sum((x - x.max(axis=1, keepdims=True)) ** 2 * c)\n",
    "no_keepdims": (
        "    s = x - x.max(axis=1)[:, None]\n"
        "    return np.sum((s - np.log(np.exp(s).sum(axis=1, keepdims=True))) * c)\n"
    ),
}


def edges(body: str) -> set:
    return shift_invariant_edges(load_function(HEAD + body, "<t>", None, None))


@pytest.mark.parametrize("name", sorted(INVARIANT))
def test_the_max_of_a_softmax_is_cut(name):
    assert edges(INVARIANT[name])


@pytest.mark.parametrize("name", sorted(NOT_INVARIANT))
def test_a_result_that_depends_on_the_shift_keeps_its_gradient(name):
    assert not edges(NOT_INVARIANT[name])


@pytest.mark.parametrize("name", sorted(INVARIANT) + sorted(NOT_INVARIANT))
@pytest.mark.parametrize("ties", [False, True])
def test_gradients_are_right_either_way(name, ties):
    source = HEAD + {**INVARIANT, **NOT_INVARIANT}[name]
    gen = compile_source(source, "x")
    if name in INVARIANT:
        assert "extremum_share" not in gen.text  # nothing computed for the max
    vag = load_generated(gen.text, "invariance_case").f_value_and_grad
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4))
    if ties:  # rows whose maximum (and minimum) is attained twice
        x[:, 1] = x.max(axis=1)
        x[:, 2] = x[:, 1]
    c = rng.uniform(0.5, 1.5, size=(3, 4))
    if name in INVARIANT or not ties:  # a tie is a kink for the others: no derivative there
        report = check_gradient(plain(source), vag, {"x": x, "c": c}, ["x"])
        assert report.passed, gen.text + report.format()


def test_the_mlp_example_stores_no_max():
    text = compile_source(
        EXAMPLE.read_text(),
        "W1,b1,W2,b2",
        shapes="W1=(d, h), b1=(h,), W2=(h, k), b2=(k,), X=(m, d), y=(m,)",
    ).text
    assert "max_logits" not in text and "extremum_share" not in text
