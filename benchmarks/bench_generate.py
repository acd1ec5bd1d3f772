"""How long srcdiff takes to generate a gradient module, and where that time goes.

A benchmark script, not a test: it prints what it measures and always exits 0. Two targets from the
issue ("generation is quick"):

* each worked example, through the CLI end to end (interpreter start-up included): under 0.3 s;
* a 1,000-statement straight-line function: under 3 s.

black alone costs about 1 s per 1,000 output lines, so for the large case the script splits the
time by stage (parse+lower, reverse, each optimize pass, emit without black, black) and prints
the time per source statement for 250, 500, 1000 and 2000 statements. srcdiff's own stages should
cost the same per statement at every size; a stage whose cost per statement grows by more than
1.5x from 500 to 2000 statements is flagged as superlinear.

Timings are the best of several runs (the least disturbed by other processes on the machine); the
CLI is timed by the wall clock, the stages in process by this process's CPU time.

    python benchmarks/bench_generate.py                # everything (a few minutes)
    python benchmarks/bench_generate.py --quick        # fewer repeats, sizes up to 1000
    python benchmarks/bench_generate.py --profile 1000 # also cProfile srcdiff's own code at 1000
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import re
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Benchmark the checkout this script lives in, in-process and in the CLI subprocesses alike.
sys.path.insert(0, str(ROOT))

EXAMPLE_TARGET = 0.3  # seconds per worked example, CLI start-up included
LARGE_TARGET = 3.0  # seconds for the 1,000-statement function
LARGE_SIZE = 1000
SIZES = [250, 500, 1000, 2000]
SUPERLINEAR = 1.5  # flag a stage whose cost per statement grows more than this from 500 to 2000
NOISE_FLOOR = 0.02  # seconds: below this at the largest size, a growth ratio is only noise

# The worked examples, used when generated_examples/ does not (yet) hold sources marked with
# a ``# srcdiff: --wrt ...`` comment: (file stem, source, --wrt).
BUILTIN_EXAMPLES = [
    ("square", "def square(w):\n    J = w**2\n    return J\n", "w"),
    ("affine_square", "def affine_square(w):\n    J = (2 + 3 * w) ** 2\n    return J\n", "w"),
    (
        "cost",
        "def cost(w, b, x, y):\n    c = w * x\n    a = c + b\n    d = a - y\n    J = d**2 / 2\n    return J\n",
        "w,b",
    ),
    ("fmax", "def fmax(x, y, z):\n    return (x + y) * max(y, z)\n", "x,y,z"),
    (
        "linear_loss",
        "def linear_loss(w, b, x, y):\n    J = 0.5 * (w * x + b - y) ** 2\n    return J\n",
        "w,b",
    ),
]


# -- timing helpers ---------------------------------------------------------------------------


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """The fastest of ``runs`` calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(max(1, runs)):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    return env


def time_command(argv: list[str], runs: int, cwd: Path) -> float:
    """Best wall time of a subprocess, which must succeed."""
    env = subprocess_env()

    def once() -> None:
        r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            tail = "\n".join(r.stderr.strip().splitlines()[-4:])
            raise RuntimeError(f"{shlex.join(argv)} exited {r.returncode}:\n{tail}")

    return best_of(runs, once)


def fmt_s(t: float | None) -> str:
    if t is None:
        return "-"
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


# -- the worked examples ----------------------------------------------------------------------


@dataclass
class Example:
    name: str
    path: Path
    args: list[str]  # everything after FILE on the command line, e.g. ["--wrt", "w,b"]


MARK = re.compile(r"^\s*#\s*srcdiff:\s*(.+?)\s*$", re.MULTILINE)
REGENERATE = re.compile(r"^#\s*Regenerate:\s*srcdiff\s+(\S+)\s+(.+?)\s*$", re.MULTILINE)


def _args_of(source: Path) -> list[str] | None:
    """The CLI options of a worked example: its ``# srcdiff:`` comment, else its module's header."""
    m = MARK.search(source.read_text(encoding="utf-8"))
    if m:
        return shlex.split(m.group(1))
    generated = source.with_name(f"{source.stem}_grad.py")
    if generated.is_file():
        m = REGENERATE.search(generated.read_text(encoding="utf-8"))
        if m:
            args = shlex.split(m.group(2))
            if "-o" in args:  # the output is the benchmark's own
                i = args.index("-o")
                del args[i : i + 2]
            return args
    return None


def find_examples(tmp: Path) -> tuple[list[Example], str]:
    found: list[Example] = []
    folder = ROOT / "generated_examples"
    if folder.is_dir():
        for source in sorted(folder.glob("*.py")):
            if source.name.endswith("_grad.py") or source.name == "__init__.py":
                continue
            args = _args_of(source)
            if args is not None and "--wrt" in args:
                found.append(Example(source.stem, source, args))
    if found:
        return found, f"{folder.relative_to(ROOT)}/ ({len(found)} marked sources)"
    for name, text, wrt in BUILTIN_EXAMPLES:
        path = tmp / f"{name}.py"
        path.write_text(text, encoding="utf-8")
        found.append(Example(name, path, ["--wrt", wrt]))
    return found, "built-in list (generated_examples/ has no sources marked '# srcdiff: --wrt ...')"


# -- synthetic straight-line functions --------------------------------------------------------

PARAMS = ["w", "b", "x", "y"]
WRT = "w,b"


def synthetic_source(n: int, seed: int = 0) -> str:
    """A straight-line function of exactly ``n`` statements, each of which feeds the result.

    A realistic mix: arithmetic, math calls, a reassigned accumulator, names reassigned in place,
    and fan-out (values read by several later statements). A value nobody has read yet is
    "pending"; each statement reads the oldest pending values first, and the last statements
    drain them, so nothing is dead.
    """
    rng = random.Random(seed)
    lines: list[str] = []
    pending: list[str] = []  # defined (current version) and not read yet
    recent: list[str] = []  # names defined lately, for fan-out
    counter = 0

    def take(k: int) -> list[str]:
        """``k`` operands: pending values first (oldest first), then recent values or parameters."""
        out: list[str] = []
        while pending and len(out) < k and (len(out) == 0 or rng.random() < 0.5):
            out.append(pending.pop(0))
        while len(out) < k:
            pool = recent[-30:] if recent and rng.random() < 0.8 else PARAMS
            pool = [v for v in pool if v not in out] or [v for v in PARAMS if v not in out]
            v = rng.choice(pool)
            if v in pending:
                pending.remove(v)
            out.append(v)
        return out

    def define(name: str, expr: str) -> None:
        lines.append(f"{name} = {expr}")
        pending.append(name)
        if name not in recent[-30:]:
            recent.append(name)

    forms = [
        (3, "{0} * {1} + {2}"),
        (2, "({0} - {1}) * w"),
        (2, "{0} / (1 + {1} * {1})"),
        (2, "math.tanh({0}) * {1}"),
        (2, "math.exp(-{0} * {0}) + {1}"),
        (1, "math.log(1 + {0} * {0})"),
        (2, "math.sqrt({0} * {0} + 1) - {1}"),
        (2, "math.sin({0}) + math.cos({1})"),
        (1, "{0} ** 2 * 0.5 + b"),
        (2, "2 * {0} - 3 * {1} + x"),
        (2, "max({0}, {1})"),
        (1, "abs({0}) * y"),
    ]
    lines.append("s = w * x + b")  # the accumulator, reassigned all along
    while len(lines) < n - 1:
        remaining = n - 1 - len(lines)
        if len(pending) > 2 * remaining:  # drain: each statement reads three, defines one
            a, b_, c = (pending.pop(0) for _ in range(3))
            counter += 1
            define(f"h{counter}", f"{a} + {b_} * {c}")
            continue
        r = rng.random()
        if r < 0.12:  # accumulate into the reassigned ``s``
            (a,) = take(1)
            lines.append(f"s = s + {a} * 0.1")
        elif r < 0.2 and pending:  # reassign a name in place (reads its old version)
            a = pending.pop(0)
            (other,) = take(1)
            define(a, f"{a} * {other} + 1")
        else:
            arity, form = forms[rng.randrange(len(forms))]
            counter += 1
            define(f"h{counter}", form.format(*take(arity)))
    lines.append("J = " + " + ".join(["s"] + pending))
    body = textwrap.indent("\n".join(lines), "    ")
    return f"import math\n\n\ndef big(w, b, x, y):\n{body}\n    return J\n"


# -- per-stage timing, in process -------------------------------------------------------------


@dataclass
class StageTimes:
    n: int
    stages: dict[str, float] = field(default_factory=dict)  # best of the runs, per stage
    total: float = 0.0  # best end-to-end run of the same stages
    output_lines: int = 0
    black_calls: int = 0
    forward_kept: str = ""
    gc_seconds: float = 0.0  # collector pauses in the fastest run, all stages (black included)
    gc_collections: int = 0

    def merge(self, run: dict[str, float], total: float) -> None:
        for k, v in run.items():
            self.stages[k] = min(self.stages.get(k, float("inf")), v)
        self.total = min(self.total, total) if self.total else total


class GcTimer:
    """Adds up the time the cyclic garbage collector pauses the program, through ``gc.callbacks``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = self.clock()
        else:
            self.seconds += self.clock() - self._start
            self.collections += 1

    def __enter__(self) -> None:
        gc.callbacks.append(self._callback)

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


class BlackTimer:
    """Wraps ``black.format_str`` while active, adding up the time and the calls spent in it.

    ``gc_inside``: the part of that time the garbage collector paused black (from ``gc_timer``).
    """

    def __init__(self, black_module: Any, clock: Callable[[], float], gc_timer: GcTimer) -> None:
        self.black = black_module
        self.clock = clock
        self.gc_timer = gc_timer
        self.seconds = 0.0
        self.gc_inside = 0.0
        self.calls = 0
        self.original = black_module.format_str

    def _timed(self, *args: Any, **kwargs: Any) -> str:
        t, g = self.clock(), self.gc_timer.seconds
        try:
            return self.original(*args, **kwargs)
        finally:
            self.seconds += self.clock() - t
            self.gc_inside += self.gc_timer.seconds - g
            self.calls += 1

    def __enter__(self) -> None:
        self.black.format_str = self._timed

    def __exit__(self, *exc: object) -> None:
        self.black.format_str = self.original


@dataclass
class Run:
    """One pass through the pipeline, stage by stage."""

    stages: dict[str, float]
    total: float
    text: str
    black_calls: int
    forward_kept: str
    gc_seconds: float
    gc_collections: int


def run_stages(source: str, clock: Callable[[], float]) -> Run:
    """The calls ``api.compile_source`` makes, each timed on its own.

    The collector's pauses are taken out of every stage and reported as a stage of their own: they
    grow with everything alive at the time (black's syntax trees above all), not with the stage's
    own work, and would otherwise make any stage look superlinear.
    """
    import black

    from srcdiff import emit, frontend, optimize, reverse
    from srcdiff.api import regenerate_command

    stages: dict[str, float] = {}
    gct = GcTimer(clock)
    bt = BlackTimer(black, clock, gct)

    def timed(label: str, fn: Callable[[], Any]) -> Any:
        t0, g0 = clock(), gct.seconds
        value = fn()
        stages[label] = (clock() - t0) - (gct.seconds - g0)
        return value

    with gct:
        t_start = clock()
        fn = timed("parse+lower", lambda: frontend.load_function(source, "big.py"))
        prog = timed("reverse", lambda: reverse.reverse(fn, WRT.split(",")))
        forward_before = len(prog.forward)
        seen: dict[str, int] = {}
        for p in optimize.PIPELINE:
            name = getattr(p, "__name__", repr(p))
            seen[name] = seen.get(name, 0) + 1
            label = f"  {name}" + (f" #{seen[name]}" if seen[name] > 1 else "")
            prog = timed(label, partial(p, prog))
        stages["optimize (sum)"] = sum(v for k, v in stages.items() if k.startswith("  "))
        # black.format_str wrapped to split emit's own work from black's (all black calls counted).
        command = regenerate_command("big.py", fn.name, [WRT])
        with bt:
            text = timed(
                "emit", lambda: emit.emit_module(prog, source_name="big.py", command=command)
            )
        emit_net = stages.pop("emit")  # without GC pauses, black's included
        stages["emit (no black)"] = emit_net - (bt.seconds - bt.gc_inside)
        stages["black"] = bt.seconds - bt.gc_inside
        total = clock() - t_start
    stages["GC pauses (all stages)"] = gct.seconds
    kept = f"{len(prog.forward)}/{forward_before}"
    return Run(stages, total, text, bt.calls, kept, gct.seconds, gct.collections)


def time_stages(source: str, n: int, runs: int) -> StageTimes:
    """Best of ``runs`` per stage.

    CPU time of this process, not wall time: other jobs on the machine (test suites running beside
    the benchmark) would otherwise be charged to whichever stage they interrupt.
    """
    result = StageTimes(n)
    for _ in range(max(1, runs)):
        gc.collect()
        run = run_stages(source, time.process_time)
        if not result.total or run.total < result.total:
            result.gc_seconds, result.gc_collections = run.gc_seconds, run.gc_collections
        result.merge(run.stages, run.total)
        result.output_lines = run.text.count("\n")
        result.black_calls = run.black_calls
        result.forward_kept = run.forward_kept
    return result


def what_if(source: str, runs: int) -> dict[str, float]:
    """CPU time of ``compile_source`` as it is, and with two cheap changes simulated.

    "one black pass": ``emit.format_and_check`` without its second, stability-checking black run.
    "no GC": the cyclic garbage collector off for the run (black's syntax trees are full of
    parent/child cycles, and every collection walks all live objects).
    """
    import ast

    import black

    from srcdiff import api, emit

    def one_pass(text: str) -> str:
        formatted = black.format_str(text, mode=emit.BLACK_MODE)
        ast.parse(formatted)
        return formatted

    def measure(single_black: bool, no_gc: bool) -> float:
        best = float("inf")
        original = getattr(emit, "format_and_check", None)
        for _ in range(max(1, runs)):
            gc.collect()
            if single_black and original is not None:
                emit.format_and_check = one_pass
            if no_gc:
                gc.disable()
            try:
                t0 = time.process_time()
                api.compile_source(source, WRT, filename="big.py")
                best = min(best, time.process_time() - t0)
            finally:
                gc.enable()
                if original is not None:
                    emit.format_and_check = original
        return best

    out = {"as is": measure(False, False), "no GC": measure(False, True)}
    if hasattr(emit, "format_and_check") and hasattr(emit, "BLACK_MODE"):
        out["one black pass"] = measure(True, False)
        out["one black pass + no GC"] = measure(True, True)
    return out


def profile_compile(source: str, top: int) -> str:
    """cProfile of one ``compile_source`` run: srcdiff's own functions, by self time and total."""
    from srcdiff.api import compile_source

    compile_source(source, WRT, filename="big.py")  # warm caches (jinja2 template, black's)
    prof = cProfile.Profile()
    prof.enable()
    compile_source(source, WRT, filename="big.py")
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs()
    own = r"(srcdiff/|^(api|cli|emit|frontend|ir|irtext|naming|optimize|prims|reverse|rules|check)\.py)"
    stats.sort_stats("tottime").print_stats(own, top)
    stats.sort_stats("cumulative").print_stats(own, top)
    # What srcdiff's functions call outside srcdiff (builtins, dataclass machinery, black).
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- report -----------------------------------------------------------------------------------


def print_stage_table(results: list[StageTimes]) -> list[str]:
    """Per-stage time and time per statement at each size; returns the flagged stages."""
    sizes = [r.n for r in results]
    stages = list(results[0].stages)
    head = f"{'stage':<34}" + "".join(f"{n:>10}" for n in sizes)
    head += "".join(f"{'us/st@' + str(n):>12}" for n in sizes) + f"{'growth':>9}"
    print(head)
    print("-" * len(head))
    flagged: list[str] = []
    rows = stages + ["TOTAL"]
    for stage in rows:
        times = [r.total if stage == "TOTAL" else r.stages.get(stage, 0.0) for r in results]
        per = [t / n * 1e6 for t, n in zip(times, sizes)]
        line = f"{stage:<34}" + "".join(f"{t * 1000:>8.1f}ms" for t in times)
        line += "".join(f"{p:>12.1f}" for p in per)
        growth = ""
        if 500 in sizes and 2000 in sizes:
            i, j = sizes.index(500), sizes.index(2000)
            if per[i] > 0:
                g = per[j] / per[i]
                growth = f"{g:>8.2f}x"
                if (
                    g > SUPERLINEAR
                    and times[j] >= NOISE_FLOOR
                    and stage not in ("TOTAL", "optimize (sum)")
                ):
                    growth += " SUPERLINEAR"
                    flagged.append(f"{stage.strip()} ({g:.2f}x per statement from 500 to 2000)")
        print(line + growth)
    print()
    for r in results:
        print(
            f"  n={r.n}: {r.output_lines} output lines, black called {r.black_calls}x, "
            f"forward nodes kept after optimize {r.forward_kept}, "
            f"GC pauses {fmt_s(r.gc_seconds)} in {r.gc_collections} collections"
        )
    return flagged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer repeats; sizes up to 1000")
    ap.add_argument("--runs", type=int, default=None, help="repeats per measurement (best is kept)")
    ap.add_argument(
        "--profile", type=int, metavar="N", help="cProfile compile_source on N statements"
    )
    ap.add_argument("--top", type=int, default=25, help="rows per profile listing")
    ap.add_argument("--sizes", help="comma-separated statement counts (default 250,500,1000,2000)")
    ap.add_argument(
        "--no-what-if", action="store_true", help="skip the one-black-pass / no-GC runs"
    )
    ap.add_argument("--dump", metavar="DIR", help="write the synthetic sources to DIR")
    args = ap.parse_args(argv)
    runs = args.runs or (2 if args.quick else 5)
    stage_runs = args.runs or (1 if args.quick else 3)
    sizes = [n for n in SIZES if not args.quick or n <= LARGE_SIZE]
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    import platform

    import black

    import srcdiff

    print(
        f"srcdiff {srcdiff.__version__} from {Path(srcdiff.__file__).parent}; black {black.__version__}; "
        f"Python {platform.python_version()}; {os.cpu_count()} CPUs; best of {runs} CLI runs, "
        f"{stage_runs} in-process runs"
    )
    summary: list[tuple[str, float | None, float, str]] = []  # (what, measured, target, note)

    with tempfile.TemporaryDirectory(prefix="srcdiff-bench-") as tmpdir:
        tmp = Path(tmpdir)
        py = sys.executable

        # 1. Interpreter start-up and import, the floor under every CLI run.
        startup = time_command([py, "-c", "pass"], runs, tmp)
        imports = time_command([py, "-c", "import srcdiff.cli"], runs, tmp)
        print()
        print("== CLI start-up ==")
        print(f"  python -c pass          {fmt_s(startup)}")
        print(
            f"  python -c 'import srcdiff.cli'  {fmt_s(imports)}  (import alone: {fmt_s(imports - startup)})"
        )

        # 2. The worked examples, end to end through the CLI, and in process for comparison.
        examples, origin = find_examples(tmp)
        print()
        print(f"== worked examples, CLI end to end (from {origin}) ==")
        print(f"  {'example':<22}{'CLI':>10}{'in-proc':>10}{'vs 0.3 s':>10}")
        from srcdiff.api import compile_source, read_source

        for ex in examples:
            out = tmp / f"{ex.name}_grad.py"
            argv = [py, "-m", "srcdiff", str(ex.path), *ex.args, "-o", str(out)]
            try:
                cli = time_command(argv, runs, tmp)
            except RuntimeError as e:
                print(f"  {ex.name:<22} FAILED: {e}")
                summary.append((f"example {ex.name} (CLI)", None, EXAMPLE_TARGET, "failed"))
                continue
            wrt = ex.args[ex.args.index("--wrt") + 1]
            function = ex.args[ex.args.index("--function") + 1] if "--function" in ex.args else None
            source = read_source(ex.path)
            compile_source(source, wrt, filename=str(ex.path), function=function)  # warm-up
            inproc = best_of(
                runs, partial(compile_source, source, wrt, filename=str(ex.path), function=function)
            )
            print(
                f"  {ex.name:<22}{fmt_s(cli):>10}{fmt_s(inproc):>10}{cli / EXAMPLE_TARGET:>9.2f}x"
            )
            summary.append(
                (f"example {ex.name} (CLI)", cli, EXAMPLE_TARGET, f"in-process {fmt_s(inproc)}")
            )

        # 3. Synthetic straight-line functions: stages, per-statement cost, and the CLI.
        print()
        print(
            f"== synthetic straight-line functions (--wrt {WRT}), per stage, CPU time, best of {stage_runs} =="
        )
        results: list[StageTimes] = []
        cli_times: dict[int, float | None] = {}
        for n in sizes:
            source = synthetic_source(n)
            path = tmp / f"big{n}.py"
            path.write_text(source, encoding="utf-8")
            if args.dump:
                Path(args.dump).mkdir(parents=True, exist_ok=True)
                Path(args.dump, f"big{n}.py").write_text(source, encoding="utf-8")
            try:
                results.append(time_stages(source, n, stage_runs))
            except Exception as e:  # noqa: BLE001 - report the failure, go on with the other sizes
                print(f"  n={n}: in-process pipeline FAILED: {type(e).__name__}: {e}")
                traceback.print_exc(limit=-4, file=sys.stdout)
                continue
            try:
                argv = [
                    py,
                    "-m",
                    "srcdiff",
                    str(path),
                    "--wrt",
                    WRT,
                    "-o",
                    str(tmp / f"big{n}_grad.py"),
                ]
                cli_times[n] = time_command(argv, 1 if n > LARGE_SIZE else min(runs, 3), tmp)
            except RuntimeError as e:
                print(f"  n={n}: CLI FAILED: {e}")
                cli_times[n] = None
        flagged: list[str] = []
        if results:
            flagged = print_stage_table(results)
            print(
                "  CLI end to end: " + ", ".join(f"n={n}: {fmt_s(t)}" for n, t in cli_times.items())
            )
        large = next((r for r in results if r.n == LARGE_SIZE), None)
        if large is not None:
            black_t = large.stages.get("black", 0.0)
            gc_t = large.stages.get("GC pauses (all stages)", 0.0)
            own = large.total - black_t - gc_t
            summary.append(
                (
                    f"{LARGE_SIZE} statements (CLI)",
                    cli_times.get(LARGE_SIZE),
                    LARGE_TARGET,
                    (
                        f"in-process {fmt_s(large.total)} = srcdiff {fmt_s(own)}"
                        f" + black {fmt_s(black_t)} ({large.black_calls} calls,"
                        f" {large.output_lines} lines) + GC {fmt_s(gc_t)}"
                    ),
                )
            )

        if large is not None and not args.no_what_if:
            print()
            print(f"== what if ({LARGE_SIZE} statements, in process, CPU time) ==")
            for label, t in what_if(synthetic_source(LARGE_SIZE), stage_runs).items():
                print(f"  {label:<26}{fmt_s(t):>10}")

        if args.profile:
            print()
            print(f"== cProfile of compile_source on {args.profile} statements ==")
            print(profile_compile(synthetic_source(args.profile), args.top))

    # 4. The table against the targets.
    print()
    print("== against the targets ==")
    print(f"  {'what':<34}{'measured':>10}{'target':>9}{'ratio':>8}  note")
    for what, measured, target, note in summary:
        if measured is None:
            print(f"  {what:<34}{'-':>10}{fmt_s(target):>9}{'-':>8}  {note}")
            continue
        ratio = measured / target
        verdict = "ok " if ratio <= 1 else "OVER"
        print(f"  {what:<34}{fmt_s(measured):>10}{fmt_s(target):>9}{ratio:>7.2f}x {verdict} {note}")
    print(
        f"  (interpreter start-up {fmt_s(startup)}, importing srcdiff.cli {fmt_s(imports - startup)} more)"
    )
    if flagged:
        print("  superlinear stages: " + "; ".join(flagged))
    else:
        print(
            f"  no stage grows more than {SUPERLINEAR}x per statement from 500 to 2000 (or sizes skipped)"
        )
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - a benchmark reports, it never fails the build
        traceback.print_exc()
    sys.exit(0)
