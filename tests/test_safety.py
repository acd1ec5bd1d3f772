"""Safe by construction: generating never runs the user's code, nothing but identifiers and numbers
goes from the input to the output, and output files are replaced whole, even by racing processes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from srcdiff.api import compile_source
from srcdiff.errors import SrcdiffError

SIDE_EFFECT = """\
import math
from pathlib import Path

Path(__file__).with_name("ran.txt").write_text("the module was imported")


def cost(w, x):
    return math.sin(w * x)
"""


def cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "srcdiff", *argv], cwd=cwd, capture_output=True, text=True
    )


def test_generating_never_runs_the_users_code(tmp_path):
    (tmp_path / "cost.py").write_text(SIDE_EFFECT)
    assert cli(tmp_path, "cost.py", "--wrt", "w").returncode == 0
    assert cli(tmp_path, "cost.py", "--wrt", "w", "--show-ir").returncode == 0
    assert cli(tmp_path, "verify", ".").returncode == 0
    assert not (tmp_path / "ran.txt").exists()
    # --check is documented to import the file: there the side effect happens
    assert cli(tmp_path, "cost.py", "--wrt", "w", "--check").returncode == 0
    assert (tmp_path / "ran.txt").exists()


SMUGGLED = '''\
import math
# os.system("rm -rf /")  a comment is never copied


def cost(w, x):
    """__import__("os").system("echo docstring")"""
    # exec("print(1)")
    y = w * x  # eval("2")
    return math.exp(y)
'''


def test_comments_and_docstrings_never_reach_the_output():
    text = compile_source(SMUGGLED, "w").text
    for smuggled in ("os.system", "__import__", "exec(", "eval(", "rm -rf", "echo docstring"):
        assert smuggled not in text
    tree = ast.parse(text)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"os", "exec", "eval", "__import__", "print"}


@pytest.mark.parametrize(
    "body",
    [
        "return len(\"__import__('os')\") * w",
        "return w * float('1e3')",
        "s = 'x'\n    return w",
        "return w if 'a' else w",
    ],
)
def test_string_constants_are_refused(body):
    with pytest.raises(SrcdiffError):
        compile_source(f"def f(w):\n    {body}\n", "w")


def test_odd_but_valid_names_are_re_emitted_as_names():
    source = "import math\n\n\ndef f(ŵ, _x_, λ2):\n    return math.exp(ŵ * _x_) + λ2 * ŵ\n"
    text = compile_source(source, "ŵ,λ2").text
    assert "def f_forward(ŵ, _x_, λ2):" in text
    compile(text, "<generated>", "exec")


def test_racing_writers_leave_one_complete_file(tmp_path):
    (tmp_path / "cost.py").write_text("def cost(w, b):\n    return (w * 3 + b) ** 2\n")
    (tmp_path / "other.py").write_text("def cost(w, b):\n    return (w * 5 - b) ** 3\n")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "srcdiff", src, "--wrt", "w,b", "-o", "out_grad.py"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for src in ["cost.py", "other.py"] * 4
    ]
    assert all(p.wait() == 0 for p in runs)
    text = (tmp_path / "out_grad.py").read_text()
    expected = {
        compile_source((tmp_path / s).read_text(), "w,b", source_name=s, output="out_grad.py").text
        for s in ("cost.py", "other.py")
    }
    assert text in expected  # one whole module, never a mix or a truncated file
    assert not list(tmp_path.glob(".out_grad.py.*"))  # no temporary file left behind


def test_a_symlinked_output_writes_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "cost.py").write_text("def cost(w, b):\n    return (w * 3 + b) ** 2\n")
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "cost_grad.py"
    target.write_text("old\n")
    (tmp_path / "cost_grad.py").symlink_to(target)
    done = cli(tmp_path, "cost.py", "--wrt", "w,b", "-o", "cost_grad.py")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cost_grad.py").is_symlink()
    assert "def cost_backward" in target.read_text()
    assert not list((tmp_path / "real").glob(".cost_grad.py.*"))


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_device_output_is_written_to_not_replaced(tmp_path):
    # -o /dev/null (or a pipe) is written to as it is: replacing it with a file, as an atomic write
    # of a regular file does, would turn the device into a file (as root, /dev/null itself).
    import os
    import stat
    import threading

    (tmp_path / "cost.py").write_text("def cost(w, b):\n    return (w * 3 + b) ** 2\n")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    done = cli(tmp_path, "cost.py", "--wrt", "w,b", "-o", "pipe")
    reader.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert b"def cost_backward" in received[0]
