"""The %%srcdiff cell magic, driven through IPython's own API."""

from __future__ import annotations

import pytest

IPython = pytest.importorskip("IPython")

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

CELL = "def cost(w, b, x, y):\n    c = w * x\n    a = c + b\n    d = a - y\n    J = d**2 / 2\n    return J\n"


@pytest.fixture(scope="module")
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "srcdiff")
    return ip


def test_the_magic_defines_the_function_and_its_gradient(shell, capsys):
    shell.run_cell_magic("srcdiff", "--wrt w,b", CELL)
    out = capsys.readouterr().out
    assert "def cost_backward(tape, dJ=1.0):" in out  # the module is shown
    assert shell.user_ns["cost"](2, 8, -2, 2) == 2  # the cell itself ran
    assert shell.user_ns["cost_grad"](2, 8, -2, 2) == (-4, 2)
    value, grads = shell.user_ns["cost_value_and_grad"](2, 8, -2, 2)
    assert value == 2 and grads == (-4, 2)


def test_quiet_and_function_options(shell, capsys):
    cell = "def helper(v):\n    return v * v\n\n\ndef f(w):\n    return helper(w) * 3\n"
    shell.run_cell_magic("srcdiff", "--wrt w --function f --quiet", cell)
    assert capsys.readouterr().out == ""
    assert shell.user_ns["f_grad"](2.0) == 12.0


def test_bad_input_shows_a_located_error_not_a_traceback(shell, capsys):
    shell.run_cell_magic("srcdiff", "--wrt w", "def f(w):\n    return w % 2\n")
    out = capsys.readouterr().out
    assert "srcdiff: error: <cell>:2:12: the operator % is not supported" in out
    assert "Traceback" not in out
    shell.run_cell_magic("srcdiff", "", CELL)
    assert "srcdiff: error:" in capsys.readouterr().out
