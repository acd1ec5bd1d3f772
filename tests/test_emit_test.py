"""``srcdiff --emit-test``: the emitted pytest module, run the way a user's suite runs it.

The emitted test is run with pytest in a subprocess, from another directory, with ``srcdiff`` made
unimportable: it must stand on its own, pass on a right module and fail on a hand-broken one.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import import_path, run_srcdiff

EXAMPLES = Path(__file__).resolve().parent.parent / "generated_examples"
AT = ["w=2", "b=8", "x=-2", "y=2"]

# pytest with srcdiff unimportable, as in a suite where srcdiff is not installed.
WITHOUT_SRCDIFF = (
    "import sys; sys.modules['srcdiff'] = None; import pytest; "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


def run_emitted(test_file: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run an emitted test file with pytest from ``cwd``."""
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SRCDIFF, "-q", "-p", "no:cacheprovider", str(test_file)],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def example_options(name: str) -> list[str]:
    """The options a NumPy example records on its '# srcdiff:' line."""
    for line in (EXAMPLES / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("# srcdiff: "):
            return shlex.split(line.removeprefix("# srcdiff: "))
    raise AssertionError(f"{name} has no '# srcdiff:' line")


def emit(directory: Path, example: str, *options: str) -> Path:
    """Copy an example into ``directory``, run srcdiff --emit-test on it; the test file's path."""
    shutil.copy(EXAMPLES / example, directory / example)
    proc = run_srcdiff(directory, example, *options, "--emit-test")
    assert proc.returncode == 0, proc.stderr
    stem = Path(example).stem
    test_file = directory / f"test_{stem}_grad.py"
    assert f"wrote {test_file.name}" in proc.stderr
    return test_file


def flip_sign(path: Path, target: str) -> None:
    """Negate the right-hand side of the first assignment to ``target`` (a hand edit gone wrong)."""
    text = path.read_text(encoding="utf-8")
    broken, count = re.subn(
        rf"^(\s*){re.escape(target)} = (.*)$",
        r"\1" + target + r" = -(\2)",
        text,
        count=1,
        flags=re.M,
    )
    assert count == 1, f"no assignment to {target} in {path.name}"
    path.write_text(broken, encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "project"


# -- the emitted test passes, from another directory, without srcdiff -------------------------


def test_scalar_example_passes(project: Path) -> None:
    test_file = emit(project, "linear_cost.py", "--wrt", "w,b", "--at", *AT)
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout  # the forward value, then dJ/dw and dJ/db
    values = import_path(test_file).values()
    assert values == {"w": 2, "b": 8, "x": -2, "y": 2}


def test_numpy_example_with_shapes_passes(project: Path) -> None:
    options = example_options("linear_regression.py")
    assert "--shapes" in options
    test_file = emit(project, "linear_regression.py", *options)
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
    text = test_file.read_text(encoding="utf-8")
    assert "import numpy as np" in text
    assert "float64" in text and "float32" in text  # the dtype note
    values = import_path(test_file).values()
    # the arrays of --check: m and n get sizes of their own
    assert values["X"].shape == (3, 4) and values["w"].shape == (4,) and values["y"].shape == (3,)
    assert values["X"].dtype == "float64"


def test_large_array_is_sampled_and_integer_labels_stay_integers(project: Path) -> None:
    # W1 has 3 * 30 = 90 elements: more than the 64 checked one by one.
    shapes = "W1=(d, 30), b1=(30,), W2=(30, k), b2=(k,), X=(m, d), y=(m,)"
    test_file = emit(
        project, "mlp.py", "--wrt", "W1,b1,W2,b2", "--shapes", shapes, "--at", "y=[0,2,1,1]"
    )
    values = import_path(test_file).values()
    assert values["W1"].shape == (3, 30)
    assert values["y"].tolist() == [0, 2, 1, 1] and values["y"].dtype.kind == "i"
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout


def test_output_in_another_directory(project: Path) -> None:
    (project / "src").mkdir()
    (project / "build").mkdir()
    shutil.copy(EXAMPLES / "linear_cost.py", project / "src" / "linear_cost.py")
    proc = run_srcdiff(
        project, "src/linear_cost.py", "--wrt", "w", "-o", "build/lc.py", "--emit-test"
    )
    assert proc.returncode == 0, proc.stderr
    test_file = project / "build" / "test_lc.py"
    text = test_file.read_text(encoding="utf-8")
    assert 'SOURCE = HERE / "../src/linear_cost.py"' in text
    assert 'GENERATED = HERE / "lc.py"' in text
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


def test_positional_only_keyword_only_and_defaults(project: Path) -> None:
    (project / "kw.py").write_text(
        "import math\n\n\n"
        "def f(a, /, b, c=1.5, *, d=2):\n"
        "    y = math.sin(a) * b + c * d**2\n"
        "    return y\n",
        encoding="utf-8",
    )
    proc = run_srcdiff(project, "kw.py", "--wrt", "a,b,c", "--emit-test", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    test_file = project / "test_kw_grad.py"
    values = import_path(test_file).values()
    assert values["c"] == 1.5 and values["d"] == 2  # the defaults
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


def test_values_are_those_of_check(project: Path) -> None:
    shutil.copy(EXAMPLES / "linear_cost.py", project / "linear_cost.py")
    proc = run_srcdiff(
        project, "linear_cost.py", "--wrt", "w,b", "--check", "--emit-test", "--seed", "7"
    )
    assert proc.returncode == 0, proc.stderr
    heading = re.search(r"^gradient check of cost at (.*)$", proc.stdout, re.M)
    assert heading, proc.stdout
    shown = dict(part.split("=") for part in heading[1].split(", "))
    values = import_path(project / "test_linear_cost_grad.py").values()
    assert {k: repr(v) for k, v in values.items()} == shown
    assert "--seed 7" in (project / "test_linear_cost_grad.py").read_text(encoding="utf-8")


# -- the emitted test fails on a broken module ---------------------------------------------


def test_a_flipped_sign_in_the_backward_fails(project: Path) -> None:
    test_file = emit(project, "linear_cost.py", "--wrt", "w,b", "--at", *AT)
    flip_sign(project / "linear_cost_grad.py", "dJ_dw")
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 2 passed" in proc.stdout
    assert "test_gradient_w" in proc.stdout and "dJ/dw: generated 4.0" in proc.stdout


def test_a_flipped_sign_in_a_numpy_backward_fails(project: Path) -> None:
    test_file = emit(project, "linear_regression.py", *example_options("linear_regression.py"))
    flip_sign(project / "linear_regression_grad.py", "dJ_dw")
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 2 passed" in proc.stdout
    assert "test_gradient_w" in proc.stdout and "dJ/dw[" in proc.stdout


def test_a_wrong_forward_value_fails(project: Path) -> None:
    test_file = emit(project, "linear_cost.py", "--wrt", "w,b", "--at", *AT)
    flip_sign(project / "linear_cost_grad.py", "J")
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test_forward_value" in proc.stdout and "1 failed" in proc.stdout


# -- what the emitted file is ----------------------------------------------------------------


def test_the_emitted_test_does_not_import_srcdiff(project: Path) -> None:
    test_file = emit(project, "linear_regression.py", *example_options("linear_regression.py"))
    imported = set()
    for node in ast.walk(ast.parse(test_file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "srcdiff" not in imported
    assert imported <= {"functools", "importlib", "math", "numbers", "sys", "pathlib"} | {
        "numpy",
        "pytest",
    }


def test_scalar_test_does_not_need_numpy(project: Path) -> None:
    text = emit(project, "linear_cost.py", "--wrt", "w,b").read_text(encoding="utf-8")
    assert "numpy" not in text


def test_header_and_regenerate_command(project: Path) -> None:
    test_file = emit(project, "linear_cost.py", "--wrt", "w,b", "--at", *AT)
    lines = test_file.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# Gradient test generated by srcdiff ")
    assert "linear_cost_grad.py" in lines[0] and "--wrt w,b" in lines[0]
    module_header = (project / "linear_cost_grad.py").read_text(encoding="utf-8").splitlines()
    assert lines[1] == module_header[1]  # the same source hash
    assert lines[2] == (
        "# Regenerate: srcdiff linear_cost.py --function cost --wrt w,b --emit-test "
        "--at w=2 b=8 x=-2 y=2"
    )
    assert str(project) not in "\n".join(lines)  # no absolute path


def test_regenerate_command_reproduces_both_files(project: Path) -> None:
    (project / "build").mkdir()
    shutil.copy(EXAMPLES / "linear_regression.py", project / "linear_regression.py")
    options = example_options("linear_regression.py")
    proc = run_srcdiff(
        project,
        "linear_regression.py",
        *options,
        "-o",
        "build/lr_grad.py",
        "--emit-test",
        "--seed",
        "3",
    )
    assert proc.returncode == 0, proc.stderr
    build = project / "build"
    before = {p.name: p.read_bytes() for p in build.iterdir()}
    assert set(before) == {"lr_grad.py", "test_lr_grad.py"}
    command = re.search(r"^# Regenerate: (.*)$", before["test_lr_grad.py"].decode(), re.M)[1]
    assert "--emit-test" in command and "--seed 3" in command
    for p in build.iterdir():
        p.unlink()
    proc = run_srcdiff(build, *shlex.split(command)[1:])
    assert proc.returncode == 0, proc.stderr
    assert {p.name: p.read_bytes() for p in build.iterdir()} == before


def test_deterministic(project: Path) -> None:
    shutil.copy(EXAMPLES / "mlp.py", project / "mlp.py")
    texts = []
    for hash_seed in ("0", "1", "random"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = run_srcdiff(project, "mlp.py", *example_options("mlp.py"), "--emit-test", env=env)
        assert proc.returncode == 0, proc.stderr
        texts.append((project / "test_mlp_grad.py").read_bytes())
    assert texts[0] == texts[1] == texts[2]


def test_the_generated_module_is_the_same_with_or_without_emit_test(project: Path) -> None:
    emit(project, "linear_cost.py", "--wrt", "w,b", "--at", *AT)
    with_test = (project / "linear_cost_grad.py").read_bytes()
    proc = run_srcdiff(project, "linear_cost.py", "--wrt", "w,b")
    assert proc.returncode == 0, proc.stderr
    assert (project / "linear_cost_grad.py").read_bytes() == with_test


def test_black_leaves_it_unchanged_and_verify_ignores_it(project: Path) -> None:
    import black

    test_file = emit(project, "linear_regression.py", *example_options("linear_regression.py"))
    text = test_file.read_text(encoding="utf-8")
    assert black.format_str(text, mode=black.Mode()) == text
    proc = run_srcdiff(project, "verify", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 generated module(s), 1 up to date" in proc.stdout


# -- bad input: exit 2, a clear message, nothing written -----------------------------------


def contents(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "-"], "with -o - there is no module file"),
        (["--show-ir"], "--show-ir writes nothing"),
        (["--at", "w=[1, 2]"], "--at w is a list, but w has no shape in --shapes"),
        (["--at", "q=1"], "'q', which is not a parameter"),
        (["--at", "w=x"], "is not a Python literal"),
    ],
)
def test_usage_errors_write_nothing(project: Path, args: list[str], message: str) -> None:
    shutil.copy(EXAMPLES / "linear_cost.py", project / "linear_cost.py")
    before = contents(project)
    proc = run_srcdiff(project, "linear_cost.py", "--wrt", "w,b", "--emit-test", *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "srcdiff: error: " in proc.stderr and message in proc.stderr, proc.stderr
    assert contents(project) == before


def test_test_path_taken_by_a_directory(project: Path) -> None:
    shutil.copy(EXAMPLES / "linear_cost.py", project / "linear_cost.py")
    (project / "test_linear_cost_grad.py").mkdir()
    proc = run_srcdiff(project, "linear_cost.py", "--wrt", "w,b", "--emit-test")
    assert proc.returncode == 2
    assert "test_linear_cost_grad.py is a directory, where the test file would go" in proc.stderr
    assert not (project / "linear_cost_grad.py").exists()


def test_shapes_that_do_not_fit_the_at_values(project: Path) -> None:
    shutil.copy(EXAMPLES / "linear_regression.py", project / "linear_regression.py")
    before = contents(project)
    options = example_options("linear_regression.py")
    proc = run_srcdiff(
        project, "linear_regression.py", *options, "--emit-test", "--at", "w=[[1.0]]"
    )
    assert proc.returncode == 2
    assert "--at w has 2 dimensions" in proc.stderr
    assert contents(project) == before


def test_bad_source_writes_nothing(project: Path) -> None:
    (project / "bad.py").write_text("def f(x):\n    y = x % 2\n    return y\n", encoding="utf-8")
    before = contents(project)
    proc = run_srcdiff(project, "bad.py", "--wrt", "x", "--emit-test")
    assert proc.returncode == 2
    assert proc.stderr.startswith("srcdiff: error: bad.py:")
    assert contents(project) == before


def test_at_and_seed_still_need_check_or_emit_test(project: Path) -> None:
    shutil.copy(EXAMPLES / "linear_cost.py", project / "linear_cost.py")
    proc = run_srcdiff(project, "linear_cost.py", "--wrt", "w,b", "--at", "w=1")
    assert proc.returncode == 2
    assert "--at only makes sense with --check or --emit-test" in proc.stderr
    proc = run_srcdiff(project, "linear_cost.py", "--wrt", "w,b", "--seed", "3")
    assert proc.returncode == 2
    assert "--seed only makes sense with --check or --emit-test" in proc.stderr


def test_a_hand_written_test_of_that_name_is_not_overwritten(project: Path) -> None:
    shutil.copy(EXAMPLES / "linear_cost.py", project / "linear_cost.py")
    (project / "test_linear_cost_grad.py").write_text("def test_mine():\n    pass\n")
    before = contents(project)
    proc = run_srcdiff(project, "linear_cost.py", "--wrt", "w,b", "--emit-test")
    assert proc.returncode == 2
    assert "exists and was not written by srcdiff --emit-test" in proc.stderr
    assert contents(project) == before


def test_an_emitted_test_is_overwritten(project: Path) -> None:
    test_file = emit(project, "linear_cost.py", "--wrt", "w,b")
    first = test_file.read_text(encoding="utf-8")
    proc = run_srcdiff(project, "linear_cost.py", "--wrt", "w,b", "--emit-test", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert test_file.read_text(encoding="utf-8") != first


def test_a_source_changed_without_regenerating_fails(project: Path) -> None:
    test_file = emit(project, "linear_cost.py", "--wrt", "w,b", "--at", *AT)
    source = project / "linear_cost.py"
    source.write_text(source.read_text().replace("d**2 / 2", "d**2 / 3"), encoding="utf-8")
    proc = run_emitted(test_file, project.parent / "elsewhere")
    assert proc.returncode == 1
    assert "3 failed" in proc.stdout


def test_literals() -> None:
    import numpy as np

    from srcdiff.testgen import literal

    assert literal(2) == "2" and literal(-0.5) == "-0.5" and literal(True) == "True"
    assert literal(float("inf")) == 'float("inf")' and literal(float("nan")) == 'float("nan")'
    assert literal((1, 2.5)) == "(1, 2.5)" and literal((1,)) == "(1,)"
    assert literal(np.float64(0.25)) == "0.25"
    assert literal(np.array([[1.0, 2.0]])) == "np.array([[1.0, 2.0]])"
    assert literal(np.array(0.5)) == "np.array(0.5)"
    assert literal(np.array([0, 2, 1])) == "np.array([0, 2, 1])"
    assert literal(np.zeros((0, 3))) == "np.zeros((0, 3))"
