"""End-to-end tests of the command line, run as a subprocess the way a user runs it.

Only the failing gradient check runs in-process: a subprocess cannot be monkeypatched, and a
correct srcdiff never produces a wrong gradient to fail on.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import black
import pytest
from helpers import COST, import_path, run_srcdiff

import srcdiff
import srcdiff.cli

TWO_FUNCTIONS = textwrap.dedent("""\
    import math


    def first(x):
        y = x * x
        return y


    def second(u, v):
        s = math.sin(u) * v
        return s
    """)

AT = ["w=2", "b=8", "x=-2", "y=2"]


def assert_clean(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr


def regenerate_line(text: str) -> str:
    match = re.search(r"^# Regenerate: (srcdiff .*)$", text, re.MULTILINE)
    assert match, f"no regenerate command in the header:\n{text[:500]}"
    return match[1]


def function_source(text: str, name: str) -> str:
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            segment = ast.get_source_segment(text, node)
            assert segment is not None
            return segment
    raise AssertionError(f"no function {name} in the generated module")


@pytest.fixture
def cost_dir(tmp_path: Path) -> Path:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="module")
def cost_module_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The default-path output for COST --wrt w,b, generated once for the contract tests."""
    d = tmp_path_factory.mktemp("cost")
    (d / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_srcdiff(d, "cost.py", "--wrt", "w,b")
    assert proc.returncode == 0, proc.stderr
    return (d / "cost_grad.py").read_text(encoding="utf-8")


# -- default output ---------------------------------------------------------------------------


def test_default_output_path_and_gradient(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b")
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    out = cost_dir / "cost_grad.py"
    assert out.is_file()
    assert sorted(p.name for p in cost_dir.iterdir()) == ["cost.py", "cost_grad.py"]
    assert proc.stdout == ""  # the module goes to the file, not to stdout
    module = import_path(out)
    dw, db = module.cost_grad(2, 8, -2, 2)
    assert dw == pytest.approx(-4)
    assert db == pytest.approx(2)


def test_input_in_another_directory_writes_beside_it(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_srcdiff(tmp_path, os.path.join("src", "cost.py"), "--wrt", "w")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "src" / "cost_grad.py").is_file()
    assert not (tmp_path / "cost_grad.py").exists()
    # The header names the source relative to the generated module, so the command works there.
    text = (tmp_path / "src" / "cost_grad.py").read_text(encoding="utf-8")
    assert regenerate_line(text) == "srcdiff cost.py --function cost --wrt w"


def test_contract_forward_backward_grad_value_and_grad(
    cost_module_text: str, tmp_path: Path
) -> None:
    path = tmp_path / "cost_grad.py"
    path.write_text(cost_module_text, encoding="utf-8")
    m = import_path(path)
    value, tape = m.cost_forward(2, 8, -2, 2)
    assert value == pytest.approx(2)
    assert m.cost_backward(tape) == pytest.approx((-4, 2))
    assert m.cost_backward(tape, 1.0) == pytest.approx((-4, 2))
    assert m.cost_backward(tape, 3.0) == pytest.approx((-12, 6))  # upstream gradient scales
    assert m.cost_backward(tape, dJ=0.5) == pytest.approx((-2, 1))  # named d<out>
    assert m.cost_grad(2, 8, -2, 2) == pytest.approx((-4, 2))
    v, grads = m.cost_value_and_grad(2, 8, -2, 2)
    assert v == pytest.approx(2)
    assert grads == pytest.approx((-4, 2))
    # Keyword calls work with the user's parameter names.
    assert m.cost_grad(w=2, b=8, x=-2, y=2) == pytest.approx((-4, 2))


def test_generated_module_keeps_user_names(cost_module_text: str) -> None:
    forward = function_source(cost_module_text, "cost_forward")
    for line in ("c = w * x", "a = c + b", "d = a - y", "J = d**2 / 2"):
        assert line in forward
    backward = function_source(cost_module_text, "cost_backward")
    assert "dJ_dw" in backward and "dJ_db" in backward


def test_generated_module_is_black_formatted(cost_module_text: str) -> None:
    assert black.format_str(cost_module_text, mode=black.Mode()) == cost_module_text


def test_generated_module_imports_only_math(cost_module_text: str) -> None:
    assert not re.search(r"^\s*(import|from)\s+srcdiff\b", cost_module_text, re.MULTILINE)
    imported = set()
    for node in ast.walk(ast.parse(cost_module_text)):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"math"}


def test_generated_module_runs_without_srcdiff(tmp_path: Path) -> None:
    source = textwrap.dedent("""\
        import math


        def loss(w, b):
            z = math.exp(w) * b
            L = math.log(z) + w**2
            return L
        """)
    (tmp_path / "loss.py").write_text(source, encoding="utf-8")
    proc = run_srcdiff(tmp_path, "loss.py", "--wrt", "w,b")
    assert proc.returncode == 0, proc.stderr
    code = textwrap.dedent("""\
        import sys
        sys.modules["srcdiff"] = None  # any import of srcdiff now fails
        sys.path.insert(0, sys.argv[1])
        import loss_grad
        dw, db = loss_grad.loss_grad(0.5, 2.0)
        assert not [m for m in sys.modules if m.startswith("srcdiff.")]
        print(repr(dw), repr(db))
        """)
    # -I: isolated mode, so neither the cwd nor PYTHONPATH put srcdiff on the path.
    run = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tmp_path)],
        check=False,
        cwd=tmp_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    dw, db = map(float, run.stdout.split())
    assert dw == pytest.approx(1 + 2 * 0.5)  # d/dw [w + log b + w**2]
    assert db == pytest.approx(1 / 2.0)


def test_output_is_deterministic_across_hash_seeds(cost_dir: Path) -> None:
    texts = []
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b", "-o", "-", env=env)
        assert proc.returncode == 0, proc.stderr
        texts.append(proc.stdout)
    assert texts[0] == texts[1] == texts[2]


def test_header_regenerates_the_default_output(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b")
    assert proc.returncode == 0, proc.stderr
    out = cost_dir / "cost_grad.py"
    first = out.read_bytes()
    command = regenerate_line(first.decode("utf-8"))
    assert command == "srcdiff cost.py --function cost --wrt w,b"
    assert str(cost_dir) not in first.decode("utf-8")  # no absolute paths
    out.unlink()
    again = run_srcdiff(cost_dir, *shlex.split(command)[1:])
    assert again.returncode == 0, again.stderr
    assert out.read_bytes() == first


# -- -o ----------------------------------------------------------------------------------------


def test_output_dash_prints_module_and_writes_nothing(
    cost_dir: Path, cost_module_text: str
) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    assert proc.stdout == cost_module_text
    assert sorted(p.name for p in cost_dir.iterdir()) == ["cost.py"]


def test_output_other_file(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b", "-o", "other.py")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in cost_dir.iterdir()) == ["cost.py", "other.py"]
    text = (cost_dir / "other.py").read_text(encoding="utf-8")
    command = regenerate_line(text)
    assert command == "srcdiff cost.py --function cost --wrt w,b -o other.py"
    assert import_path(cost_dir / "other.py").cost_grad(2, 8, -2, 2) == pytest.approx((-4, 2))
    # The recorded command, run again, reproduces the file byte for byte.
    (cost_dir / "other.py").unlink()
    again = run_srcdiff(cost_dir, *shlex.split(command)[1:])
    assert again.returncode == 0, again.stderr
    assert (cost_dir / "other.py").read_text(encoding="utf-8") == text


def test_output_in_subdirectory_header_is_relative_to_it(cost_dir: Path) -> None:
    (cost_dir / "gen").mkdir()
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w", "-o", os.path.join("gen", "cost_dw.py"))
    assert proc.returncode == 0, proc.stderr
    text = (cost_dir / "gen" / "cost_dw.py").read_text(encoding="utf-8")
    command = regenerate_line(text)
    (cost_dir / "gen" / "cost_dw.py").unlink()
    again = run_srcdiff(cost_dir / "gen", *shlex.split(command)[1:])  # run where the module lives
    assert again.returncode == 0, again.stderr
    assert (cost_dir / "gen" / "cost_dw.py").read_text(encoding="utf-8") == text


def test_output_overwrites_previous_output(cost_dir: Path) -> None:
    out = cost_dir / "cost_grad.py"
    out.write_text("# stale\n", encoding="utf-8")
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b")
    assert proc.returncode == 0, proc.stderr
    assert "def cost_backward" in out.read_text(encoding="utf-8")
    assert sorted(p.name for p in cost_dir.iterdir()) == ["cost.py", "cost_grad.py"]


# -- --wrt and --function ------------------------------------------------------------------------


def test_single_wrt_gives_bare_gradient(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w")
    assert proc.returncode == 0, proc.stderr
    m = import_path(cost_dir / "cost_grad.py")
    g = m.cost_grad(2, 8, -2, 2)
    assert not isinstance(g, tuple)
    assert g == pytest.approx(-4)
    _, tape = m.cost_forward(2, 8, -2, 2)
    assert m.cost_backward(tape) == pytest.approx(-4)
    assert m.cost_value_and_grad(2, 8, -2, 2) == pytest.approx((2, -4))


def test_wrt_order_is_kept(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "y,b,w")
    assert proc.returncode == 0, proc.stderr
    m = import_path(cost_dir / "cost_grad.py")
    assert m.cost_grad(2, 8, -2, 2) == pytest.approx((-2, 2, -4))


def test_function_selection(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(TWO_FUNCTIONS, encoding="utf-8")
    proc = run_srcdiff(tmp_path, "two.py", "--function", "second", "--wrt", "u,v")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "two_grad.py").read_text(encoding="utf-8")
    assert "def second_forward(u, v)" in text
    assert "first" not in text
    assert regenerate_line(text) == "srcdiff two.py --function second --wrt u,v"
    m = import_path(tmp_path / "two_grad.py")
    du, dv = m.second_grad(0.3, 2.0)
    import math

    assert du == pytest.approx(math.cos(0.3) * 2.0)
    assert dv == pytest.approx(math.sin(0.3))

    proc = run_srcdiff(tmp_path, "two.py", "--function", "first", "--wrt", "x", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert "def first_forward(x)" in proc.stdout


# -- --check -------------------------------------------------------------------------------------


def table_rows(stdout: str) -> dict[str, list[str]]:
    """Rows of the check table, by their first word."""
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip()}


def test_check_passes_and_prints_table(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b", "--check", "--at", *AT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_clean(proc)
    out = proc.stdout
    assert "analytic" in out and "numeric" in out and "rel" in out
    rows = table_rows(out)
    assert float(rows["w"][1]) == pytest.approx(-4) and float(rows["w"][2]) == pytest.approx(-4)
    assert float(rows["b"][1]) == pytest.approx(2) and float(rows["b"][2]) == pytest.approx(2)
    assert "PASS" in out and "FAIL" not in out
    # The forward value is compared with the original function's value, too.
    assert re.search(r"value.*original.*2.*generated.*2", out)
    assert (cost_dir / "cost_grad.py").is_file()


def test_check_with_dash_output_writes_nothing(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b", "-o", "-", "--check", "--at", *AT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "def cost_forward" in proc.stdout and "PASS" in proc.stdout
    assert sorted(p.name for p in cost_dir.iterdir()) == ["cost.py"]


def checked_at(stdout: str) -> dict[str, float]:
    """The parameter values the check reports it used."""
    line = next(line for line in stdout.splitlines() if " at " in line and "=" in line)
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-+0-9.e]+)", line.split(" at ", 1)[1])}


def test_check_unnamed_parameters_are_seeded_random(cost_dir: Path) -> None:
    first = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b", "--check", "--at", "w=2")
    assert first.returncode == 0, first.stdout + first.stderr
    values = checked_at(first.stdout)
    assert values["w"] == 2
    assert set(values) == {"w", "b", "x", "y"}
    assert len({values["b"], values["x"], values["y"]}) == 3  # not one constant for all
    second = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b", "--check", "--at", "w=2")
    assert second.stdout == first.stdout  # reproducible
    other_seed = run_srcdiff(
        cost_dir, "cost.py", "--wrt", "w,b", "--check", "--at", "w=2", "--seed", "7"
    )
    assert other_seed.returncode == 0
    assert checked_at(other_seed.stdout)["w"] == 2
    assert checked_at(other_seed.stdout) != values


def test_check_without_at(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b,x,y", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(table_rows(proc.stdout)) >= {"w", "b", "x", "y", "PASS:"}


def test_check_uses_parameter_defaults(tmp_path: Path) -> None:
    (tmp_path / "d.py").write_text(
        "def f(x, k=3.0):\n    y = k * x * x\n    return y\n", encoding="utf-8"
    )
    proc = run_srcdiff(tmp_path, "d.py", "--wrt", "x", "--check", "--at", "x=2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert checked_at(proc.stdout) == {"x": 2.0, "k": 3.0}
    assert float(table_rows(proc.stdout)["x"][1]) == pytest.approx(12)


def _tampered_loader(
    monkeypatch: pytest.MonkeyPatch, *, grad_shift: float = 0.0, value_shift: float = 0.0
):
    real = srcdiff.cli.load_generated

    def load(text: str, name: str) -> types.ModuleType:
        module = real(text, name)
        good = module.cost_value_and_grad

        def bad(*args, **kwargs):
            value, (dw, db) = good(*args, **kwargs)
            return value + value_shift, (dw + grad_shift, db)

        module.cost_value_and_grad = bad
        return module

    monkeypatch.setattr(srcdiff.cli, "load_generated", load)


def check_cost_in_process(cost_dir: Path) -> int:
    """``srcdiff cost.py --wrt w,b -o cost_grad.py --check --at AT`` through ``srcdiff.cli.main``."""
    out_path = cost_dir / "cost_grad.py"
    return srcdiff.cli.main(
        [str(cost_dir / "cost.py"), "--wrt", "w,b", "-o", str(out_path), "--check", "--at", *AT]
    )


@pytest.mark.usefixtures("forget_user_modules")
def test_check_fails_on_wrong_gradient(
    cost_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _tampered_loader(monkeypatch, grad_shift=0.5)
    rc = check_cost_in_process(cost_dir)
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in out
    assert "FAIL" in " ".join(table_rows(out)["w"])
    assert "FAIL" not in " ".join(table_rows(out)["b"])


@pytest.mark.usefixtures("forget_user_modules")
def test_check_fails_on_wrong_forward_value(
    cost_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _tampered_loader(monkeypatch, value_shift=1.0)
    rc = check_cost_in_process(cost_dir)
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in out
    value_line = next(line for line in out.splitlines() if line.startswith("value"))
    assert "FAIL" in value_line


@pytest.mark.usefixtures("forget_user_modules")
def test_check_passes_in_process(cost_dir: Path, capsys) -> None:
    """The untampered in-process run passes, so the two tests above fail for the tampering alone."""
    rc = check_cost_in_process(cost_dir)
    assert rc == 0
    assert "PASS" in capsys.readouterr().out


# -- --show-ir, --help, --version, entry points -----------------------------------------------------


def test_show_ir_prints_ssa_and_writes_nothing(cost_dir: Path) -> None:
    proc = run_srcdiff(cost_dir, "cost.py", "--wrt", "w,b", "--show-ir")
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc)
    for line in ("c = mul(w, x)", "a = add(c, b)", "d = sub(a, y)"):
        assert line in proc.stdout
    assert "dJ_dw" in proc.stdout  # the backward graph is shown too
    assert sorted(p.name for p in cost_dir.iterdir()) == ["cost.py"]


def test_show_ir_shows_ssa_versions_of_reassigned_names(tmp_path: Path) -> None:
    (tmp_path / "r.py").write_text(
        "def f(w, b):\n    c = w * w\n    c = c + b\n    return c\n", encoding="utf-8"
    )
    proc = run_srcdiff(tmp_path, "r.py", "--wrt", "w", "--show-ir")
    assert proc.returncode == 0, proc.stderr
    assert "c = mul(w, w)" in proc.stdout
    assert "c_1 = add(c, b)" in proc.stdout


def test_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "srcdiff", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: srcdiff")
    for option in (
        "FILE",
        "--wrt",
        "--function",
        "-o",
        "--check",
        "--at",
        "--show-ir",
        "--version",
    ):
        assert option in proc.stdout
    assert "_grad.py" in proc.stdout  # says where the output goes by default


def test_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "srcdiff", "--version"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"srcdiff {srcdiff.__version__}"


def console_script() -> str | None:
    beside = Path(sys.executable).parent / ("srcdiff.exe" if os.name == "nt" else "srcdiff")
    return str(beside) if beside.exists() else shutil.which("srcdiff")


@pytest.mark.skipif(console_script() is None, reason="the srcdiff console script is not installed")
def test_console_script_runs(cost_dir: Path) -> None:
    script = console_script()
    assert script is not None
    version = subprocess.run(
        [script, "--version"], check=False, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0
    assert version.stdout.strip() == f"srcdiff {srcdiff.__version__}"
    proc = subprocess.run(
        [script, "cost.py", "--wrt", "w,b", "--check", "--at", *AT],
        check=False,
        cwd=cost_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout
    assert (cost_dir / "cost_grad.py").is_file()
