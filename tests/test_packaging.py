"""A plain (non-editable) wheel ships the templates and the CLI finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = out.glob("srcdiff-*.whl")
    return path


def test_wheel_contains_templates_and_package(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    assert "srcdiff/templates/module.py.j2" in names
    assert "srcdiff/templates/test_module.py.j2" in names  # --emit-test
    assert "srcdiff/cli.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_wheel_generates(wheel: Path, tmp_path: Path):
    """Unpack the wheel alone on sys.path (no checkout next to it) and run the CLI from it."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    src = tmp_path / "cost.py"
    src.write_text("def cost(w):\n    J = w**2\n    return J\n")
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from srcdiff.cli import main; sys.exit(main())",
            str(src),
            "--wrt",
            "w",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "cost_grad.py").read_text()
    assert "def cost_backward(tape, dJ=1.0):" in text
    check = subprocess.run(
        [sys.executable, "-c", "import srcdiff.emit as e; print(e.templates_dir())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
    )
    assert str(site) in check.stdout


def test_start_up_imports_neither_sympy_nor_numpy():
    """Generating scalar code needs neither: sympy alone costs about a second of start-up."""
    code = (
        "import sys, srcdiff.cli; print(sorted(m for m in ('sympy', 'numpy') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_generating_scalar_code_imports_neither_sympy_nor_numpy(tmp_path):
    src = tmp_path / "c.py"
    src.write_text("def f(w):\n    return w * w\n")
    code = (
        "import sys; from srcdiff.cli import main; main([sys.argv[1], '--wrt', 'w', '-o', '-']);"
        "print(sorted(m for m in ('sympy', 'numpy') if m in sys.modules), file=sys.stderr)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(src)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip().splitlines()[-1] == "[]"
