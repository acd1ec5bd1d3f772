"""srcdiff verify: finds generated modules by their header and tells fresh, stale and edited apart."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from srcdiff.cli import main
from srcdiff.verify import read_header, verify

EXAMPLES = Path(__file__).resolve().parent.parent / "generated_examples"
COUNT = len(list(EXAMPLES.glob("*_grad.py")))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the worked examples, plus a file that is not a generated module."""
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLES, dest)
    (dest / "notes.py").write_text("# just a file\nX = 1\n")
    return dest


def statuses(root: Path) -> dict[str, str]:
    return {r.path.name: r.status for r in verify([root])}


def test_fresh_modules_pass(project: Path, capsys):
    assert set(statuses(project).values()) == {"ok"}
    assert "notes.py" not in statuses(project)
    assert main(["verify", str(project)]) == 0
    assert f"{COUNT} up to date" in capsys.readouterr().out


def test_header_is_read_back():
    header = read_header(EXAMPLES / "linear_cost_grad.py")
    assert header is not None
    assert (header.source, header.function, header.wrt, header.output) == (
        "linear_cost.py",
        "cost",
        "w,b",
        None,
    )
    assert read_header(EXAMPLES / "linear_cost.py") is None


def test_stale_module_is_listed_with_its_command(project: Path, capsys):
    src = project / "linear_cost.py"
    src.write_text(src.read_text().replace("J = d**2 / 2", "J = d**2 / 3"))
    assert statuses(project)["linear_cost_grad.py"] == "stale"
    assert main(["verify", str(project)]) == 1
    out = capsys.readouterr().out
    assert "stale" in out and "linear_cost_grad.py" in out
    assert "srcdiff linear_cost.py --function cost --wrt w,b" in out


def test_hand_edited_module_is_listed(project: Path):
    mod = project / "square_grad.py"
    mod.write_text(mod.read_text().replace("dJ_dw = dJ * 2 * w", "dJ_dw = dJ * 2.0 * w"))
    assert statuses(project)["square_grad.py"] == "edited"


def test_fix_regenerates_and_leaves_everything_fresh(project: Path):
    src = project / "linear_cost.py"
    src.write_text(src.read_text().replace("J = d**2 / 2", "J = d**2 / 3"))
    mod = project / "square_grad.py"
    original = mod.read_text()
    mod.write_text(original.replace("dJ_dw = dJ * 2 * w", "dJ_dw = dJ * 2.0 * w"))
    assert main(["verify", "--fix", str(project)]) == 0
    assert mod.read_text() == original
    assert "dJ * 2 * d / 3" in (project / "linear_cost_grad.py").read_text()
    assert set(statuses(project).values()) == {"ok"}


def test_source_with_an_error_or_missing_is_reported(project: Path, capsys):
    (project / "cube.py").unlink()
    bad = project / "square.py"
    bad.write_text(bad.read_text().replace("J = w**2", "J = w % 2"))
    st = statuses(project)
    assert st["cube_grad.py"] == "error" and st["square_grad.py"] == "error"
    assert main(["verify", "--fix", str(project)]) == 1
    out = capsys.readouterr().out
    assert "no such file" in out and "square.py:5:9" in out


def test_missing_path_is_a_usage_error(tmp_path: Path):
    assert main(["verify", str(tmp_path / "nope")]) == 2


def test_verify_runs_as_a_command(project: Path):
    run = subprocess.run(
        [sys.executable, "-m", "srcdiff", "verify"], cwd=project, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{COUNT} up to date" in run.stdout


def test_pre_commit_hook_definition():
    text = (Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml").read_text()
    assert "id: srcdiff-verify" in text and "entry: srcdiff verify" in text
