"""How fast srcdiff's generated NumPy gradients are, beside an expert's and beside other AD tools.

A benchmark script, not a test: it prints what it measures and always exits 0. For each NumPy
worked example in generated_examples/ (issue 3) at a small, a medium and a large size, it times in
one run, on the same float64 inputs:

* ``forward``: the example's source function alone;
* ``hand``: the hand-written ``<name>_value_and_grad`` of benchmarks/handwritten.py;
* ``generated``: ``<fn>_value_and_grad`` of generated_examples/<name>_grad.py, when that file exists
  (else a note says how to make it);
* ``autograd``, ``jax`` (jit, x64, compile excluded, ``block_until_ready``) and ``torch`` (CPU,
  ``torch.autograd.grad``), each only when importable; they are an optional extra, never required.

Every time is the best of several runs with ``time.perf_counter`` (the least disturbed by the rest
of the machine); fast calls are looped so that one run lasts at least a few milliseconds, and the
number of runs adapts to the size. Before timing, each tool's value and gradients are compared with
the hand-written ones, and a disagreement is printed.

Targets from issue 3, marked ``ok`` or ``MISS``:

* generated / hand-written <= 1.10 at the medium and large sizes;
* gradient / forward <= 3 at the large size;
* peak memory of the generated gradient <= 1.2x the hand-written one at the large size, measured
  with tracemalloc (NumPy reports its array buffers to it): the peak of traced memory during one
  call, above what was allocated before the call, so it includes the returned value and gradients.

    python benchmarks/bench_numpy.py                 # everything (about two minutes on 2 cores)
    python benchmarks/bench_numpy.py --quick         # small and medium sizes, shorter timings
    python benchmarks/bench_numpy.py --only mlp,rosenbrock --no-peers
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import inspect
import os
import platform
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "generated_examples"

GEN_VS_HAND = 1.10  # generated / hand-written, at the medium and large sizes
GRAD_VS_FORWARD = 3.0  # gradient / forward, at the large size
# For loops (issue 4) the target is generated / hand-written <= 1.2 at every size.
LOOP_EXAMPLES = {"horner", "rnn", "rnn_sequence", "rnn_states"}
LOOP_GEN_VS_HAND = 1.2
MEMORY_RATIO = 1.2  # peak memory, generated / hand-written, at the large size
SIZE_LABELS = ("small", "medium", "large")


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HAND = load(Path(__file__).resolve().parent / "handwritten.py", "bench_handwritten")


# -- sizes and inputs --------------------------------------------------------------------------

# name -> three dimensions, small to large. The large sizes hold 1 to 20 million float64 numbers
# in their biggest array (8 to 160 MB), so that the large figures measure memory bandwidth and
# BLAS rather than Python's call overhead; small ones (hundreds of numbers) measure the overhead.
SIZES: dict[str, list[dict[str, int]]] = {
    "logistic_regression": [{"m": 100, "n": 20}, {"m": 10_000, "n": 20}, {"m": 1_000_000, "n": 20}],
    "linear_regression": [{"m": 100, "n": 20}, {"m": 10_000, "n": 20}, {"m": 1_000_000, "n": 20}],
    "window_sigmoid": [{"h": 20, "d": 100}, {"h": 200, "d": 1_000}, {"h": 1_000, "d": 10_000}],
    "mlp": [
        {"m": 100, "d": 64, "h": 128, "k": 10},
        {"m": 10_000, "d": 64, "h": 128, "k": 10},
        {"m": 50_000, "d": 64, "h": 128, "k": 10},
    ],
    "rosenbrock": [{"n": 100}, {"n": 10_000}, {"n": 1_000_000}],
}
# Loops (issue 4): sizes are the number of iterations, where Python's per-step overhead shows.
SIZES["horner"] = [{"degree": 10}, {"degree": 100}, {"degree": 1_000}]
SIZES["rnn"] = [
    {"T": 10, "H": 64, "D": 32},
    {"T": 100, "H": 64, "D": 32},
    {"T": 1_000, "H": 64, "D": 32},
]
SIZES["rnn_sequence"] = SIZES["rnn_states"] = SIZES["rnn"]
SIZES["huber_regression"] = SIZES["linear_regression"]
SIZES["logistic_regression_stable"] = SIZES["logistic_regression"]
SIZES["window_tanh"] = SIZES["window_relu"] = SIZES["window_sigmoid"]


def make_inputs(name: str, dims: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """float64 arguments of example ``name``, by parameter name, scaled to keep values moderate."""
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal
    if name.startswith("logistic_regression") or name == "linear_regression":
        m, n = dims["m"], dims["n"]
        X = normal((m, n))
        w = normal(n) / np.sqrt(n)
        if name == "linear_regression":
            y = X @ w + 0.5 + 0.1 * normal(m)
        else:
            y = (rng.random(m) < 0.5).astype(np.float64)
        return {"w": w, "b": 0.1, "X": X, "y": y}
    if name.startswith("window_"):
        h, d = dims["h"], dims["d"]
        return {"W": normal((h, d)) / np.sqrt(d), "b": normal(h), "u": normal(h), "x": normal(d)}
    if name == "mlp":
        m, d, h, k = dims["m"], dims["d"], dims["h"], dims["k"]
        return {
            "W1": normal((d, h)) * np.sqrt(2 / d),
            "b1": 0.01 * normal(h),
            "W2": normal((h, k)) * np.sqrt(1 / h),
            "b2": 0.01 * normal(k),
            "X": normal((m, d)),
            "y": rng.integers(0, k, size=m),
        }
    if name == "rosenbrock":
        return {"x": 1 + 0.5 * normal(dims["n"])}
    if name == "horner":
        n = dims["degree"] + 1
        return {"c": normal(n) / n, "x": 0.9}
    if name.startswith("rnn"):
        T, H, D = dims["T"], dims["H"], dims["D"]
        # An orthogonal Wh and small inputs keep tanh near its linear range, so the gradient
        # neither explodes nor vanishes over 1,000 steps: otherwise it sinks into subnormal
        # numbers, whose arithmetic is so slow that the timing measures the CPU, not the code.
        Wh, _ = np.linalg.qr(normal((H, H)))
        args = {
            "Wx": 0.1 * normal((H, D)) / np.sqrt(D),
            "Wh": Wh,
            "b": 0.01 * normal(H),
            "h": 0.1 * normal(H),
            "X": 0.1 * normal((T, D)),
        }
        if name in ("rnn_sequence", "rnn_states"):
            args["Y"] = 0.5 * normal((T, H))
        return args
    if name == "huber_regression":
        m, n = dims["m"], dims["n"]
        X = normal((m, n))
        w = normal(n) / np.sqrt(n)
        return {"w": w, "X": X, "y": X @ w + normal(m), "delta": 1.0}
    raise KeyError(name)


def describe(dims: dict[str, int]) -> str:
    return " ".join(f"{k}={v:,}" for k, v in dims.items())


# -- timing and memory -------------------------------------------------------------------------


def best_time(call: Callable[[], object], budget: float) -> float:
    """Best seconds per call of ``call``, spending about ``budget`` seconds after a warm-up.

    The warm-up runs until half the budget is spent (at least one call): PyTorch and JAX are
    several times slower for their first few calls (thread pools, allocator caches), and the
    first touch of a new array's pages costs in every tool. Calls faster than 2 ms are timed in
    loops; at least 3 samples are taken, however slow the call.
    """
    started = time.perf_counter()
    once = float("inf")
    while True:
        t0 = time.perf_counter()
        call()
        t1 = time.perf_counter()
        once = min(once, t1 - t0)
        if t1 - started >= budget / 2:
            break
    number = max(1, min(10_000, int(2e-3 / max(once, 1e-7))))
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        best = float("inf")
        samples = 0
        started = time.perf_counter()
        while samples < 3 or (time.perf_counter() - started < budget and samples < 200):
            t0 = time.perf_counter()
            for _ in range(number):
                call()
            best = min(best, (time.perf_counter() - t0) / number)
            samples += 1
    finally:
        if was_enabled:
            gc.enable()
    return best


def peak_memory(call: Callable[[], object]) -> int:
    """Bytes of traced memory at the peak of one call, above the memory traced before it."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
    return peak


def fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.1f} KB"


def fmt_ratio(r: float | None, target: float | None = None) -> str:
    if r is None:
        return "-"
    text = f"{r:.2f}"
    if target is not None:
        text += " ok" if r <= target else " MISS"
    return text


# -- the tools being compared -----------------------------------------------------------------
# Each maker takes (example name, source path, function name, wrt, inputs) and returns a
# zero-argument callable that computes (value, grads), plus a function that converts its result
# to (float value, tuple of NumPy gradients) for the agreement check.


def as_tuple(grads: Any, wrt: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(grads) if len(wrt) > 1 else (grads,)


def positional(fn: Callable, inputs: dict[str, Any]) -> list[Any]:
    return [inputs[p] for p in inspect.signature(fn).parameters]


def source_with_namespace(path: Path, fn_name: str, numpy_like: ModuleType, tag: str) -> Callable:
    """The example's own function, run with ``np`` bound to another NumPy-like module."""
    module = load(path, f"bench_{tag}_{path.stem}")
    module.np = numpy_like
    return getattr(module, fn_name)


def make_autograd(name, path, fn_name, wrt, inputs):
    import autograd
    import autograd.numpy as anp

    fn = source_with_namespace(path, fn_name, anp, "autograd")
    params = list(inspect.signature(fn).parameters)
    vag = autograd.value_and_grad(fn, argnum=tuple(params.index(p) for p in wrt))
    args = positional(fn, inputs)
    return (lambda: vag(*args)), (lambda out: (out[0], tuple(out[1])))


_JAX_READY = False


def make_jax(name, path, fn_name, wrt, inputs):
    global _JAX_READY
    import jax
    import jax.numpy as jnp

    if not _JAX_READY:
        jax.config.update("jax_enable_x64", True)  # float64, as NumPy; before any array exists
        _JAX_READY = True
    fn = source_with_namespace(path, fn_name, jnp, "jax")
    params = list(inspect.signature(fn).parameters)
    vag = jax.jit(jax.value_and_grad(fn, argnums=tuple(params.index(p) for p in wrt)))
    args = [jnp.asarray(a) for a in positional(fn, inputs)]
    jax.block_until_ready(vag(*args))  # compile outside the timing

    def call():
        return jax.block_until_ready(vag(*args))

    return call, (lambda out: (float(out[0]), tuple(np.asarray(g) for g in out[1])))


def torch_function(name: str) -> Callable:
    """The example written the way a PyTorch user writes it, with torch's own building blocks."""
    import torch
    import torch.nn.functional as F

    if name == "logistic_regression":

        def cost(w, b, X, y):
            p = 1 / (1 + torch.exp(-(X @ w + b)))
            return -torch.mean(y * torch.log(p) + (1 - y) * torch.log(1 - p))

        return cost
    if name == "logistic_regression_stable":
        return lambda w, b, X, y: F.binary_cross_entropy_with_logits(X @ w + b, y)
    if name.startswith("window_"):
        f = {"window_sigmoid": torch.sigmoid, "window_tanh": torch.tanh, "window_relu": torch.relu}
        act = f[name]
        return lambda W, b, u, x: u @ act(W @ x + b)
    if name == "mlp":

        def loss(W1, b1, W2, b2, X, y):
            return F.cross_entropy(torch.relu(X @ W1 + b1) @ W2 + b2, y)

        return loss
    if name == "linear_regression":
        return lambda w, b, X, y: torch.mean((X @ w + b - y) ** 2)
    if name == "rosenbrock":
        return lambda x: torch.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    if name == "horner":

        def horner(c, x):
            p = 0.0
            for i in range(len(c)):
                p = p * x + c[i]
            return p

        return horner
    if name == "rnn":

        def rnn(Wx, Wh, b, h, X):
            for x_t in X:
                h = torch.tanh(Wx @ x_t + Wh @ h + b)
            return 0.5 * torch.sum(h**2)

        return rnn
    if name == "rnn_sequence":

        def rnn_loss(Wx, Wh, b, h, X, Y):
            J = 0.0
            for t in range(X.shape[0]):
                h = torch.tanh(Wx @ X[t] + Wh @ h + b)
                J = J + torch.sum((h - Y[t]) ** 2)
            return J

        return rnn_loss
    if name == "rnn_states":

        def rnn_states(Wx, Wh, b, h, X, Y):
            hs = []
            for x_t in X:
                h = torch.tanh(Wx @ x_t + Wh @ h + b)
                hs.append(h)
            return torch.sum((torch.stack(hs) - Y) ** 2)

        return rnn_states
    if name == "huber_regression":
        return lambda w, X, y, delta: F.huber_loss(X @ w, y, delta=delta)
    raise KeyError(name)


def make_torch(name, path, fn_name, wrt, inputs):
    import torch

    fn = torch_function(name)
    params = list(inspect.signature(fn).parameters)
    tensors = {}
    for p in params:
        t = torch.as_tensor(inputs[p])  # shares the NumPy buffer where it can
        if p in wrt:
            t.requires_grad_(True)
        tensors[p] = t
    args = [tensors[p] for p in params]
    leaves = [tensors[p] for p in wrt]

    def call():
        value = fn(*args)
        return value, torch.autograd.grad(value, leaves)

    return call, (lambda out: (float(out[0].detach()), tuple(g.numpy() for g in out[1])))


PEERS = {"autograd": make_autograd, "jax": make_jax, "torch": make_torch}


def peer_versions() -> dict[str, str]:
    """Version of each optional peer that imports, or why it does not."""
    found = {}
    for mod in ("autograd", "jax", "torch"):
        try:
            __import__(mod)
            found[mod] = importlib.metadata.version(mod)
        except ImportError as e:
            found[mod] = f"not installed ({e.name or mod})"
        except Exception as e:  # a broken install must not stop the benchmark
            found[mod] = f"unusable ({type(e).__name__}: {e})"
    return found


def agree(result: tuple[float, tuple[Any, ...]], reference: tuple[float, tuple[Any, ...]]) -> str:
    """'' if value and gradients match the hand-written ones, else what differs."""
    value, grads = result
    ref_value, ref_grads = reference
    problems = []
    if not np.isclose(float(value), float(ref_value), rtol=1e-6, atol=1e-9):
        problems.append(f"value {float(value):.6g} != {float(ref_value):.6g}")
    if len(grads) != len(ref_grads):
        return f"{len(grads)} gradients, expected {len(ref_grads)}"
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        g = np.asarray(g, dtype=np.float64)
        r = np.asarray(r, dtype=np.float64)
        if g.shape != r.shape:
            problems.append(f"gradient {i} has shape {g.shape}, expected {r.shape}")
            continue
        err = np.linalg.norm(g - r)
        if not err <= 1e-6 * np.linalg.norm(r) + 1e-12:
            problems.append(f"gradient {i} off by {err / (np.linalg.norm(r) or 1):.1e} (relative)")
    return "; ".join(problems)


# -- one example -------------------------------------------------------------------------------


def find_generated(name: str, fn_name: str, wrt: tuple[str, ...]) -> tuple[Callable | None, str]:
    path = EXAMPLES_DIR / f"{name}_grad.py"
    if not path.is_file():
        source = os.path.relpath(EXAMPLES_DIR / f"{name}.py")
        return None, f"{path.name} not found; make it with: srcdiff {source} --wrt {','.join(wrt)}"
    try:
        module = load(path, f"bench_generated_{name}")
        return getattr(module, f"{fn_name}_value_and_grad"), ""
    except Exception as e:
        return None, f"{path.name} does not load: {type(e).__name__}: {e}"


@dataclass
class Example:
    """One worked example and the callables that compute it."""

    name: str
    path: Path  # generated_examples/<name>.py
    fn_name: str
    wrt: tuple[str, ...]
    fn: Callable  # the source function: the forward pass alone
    hand: Callable  # hand-written value_and_grad
    generated: Callable | None  # generated value_and_grad, when its module exists and loads


def measure_size(
    ex: Example, i: int, columns: list[str], peers: list[str], budget: float, notes: list[str]
) -> tuple | None:
    """Time every tool at one size of ``ex``, print its row (and memory at the large size).

    Returns the large size's figures for the summary table, else None.
    """
    name, wrt, fn, hand, generated = ex.name, ex.wrt, ex.fn, ex.hand, ex.generated
    label = SIZE_LABELS[i]
    dims = SIZES[name][i]
    inputs = make_inputs(name, dims)
    times: dict[str, float | None] = dict.fromkeys(columns)
    ref = hand(**inputs)
    reference = (float(ref[0]), as_tuple(ref[1], wrt))

    times["forward"] = best_time(lambda: fn(**inputs), budget)
    times["hand"] = best_time(lambda: hand(**inputs), budget)
    if generated is not None:
        try:
            out = generated(**inputs)
            bad = agree((out[0], as_tuple(out[1], wrt)), reference)
            if bad:
                notes.append(f"{label}: generated DISAGREES with hand-written: {bad}")
            times["generated"] = best_time(lambda: generated(**inputs), budget)
        except Exception as e:
            notes.append(f"{label}: generated failed: {type(e).__name__}: {e}")
    for peer in peers:
        try:
            call, convert = PEERS[peer](name, ex.path, ex.fn_name, wrt, inputs)
            bad = agree(convert(call()), reference)
            if bad:
                notes.append(f"{label}: {peer} disagrees with hand-written: {bad}")
            times[peer] = best_time(call, budget)
        except Exception as e:
            notes.append(f"{label}: {peer} failed: {type(e).__name__}: {e}")

    fwd, hand_t, gen_t = times["forward"], times["hand"], times["generated"]
    gen_hand = gen_t / hand_t if gen_t else None
    large = label == "large"
    row = f"   {label + ' ' + describe(dims):<34}" + "".join(
        f"{fmt_time(times[c]):>11}" for c in columns
    )
    if name in LOOP_EXAMPLES:
        row += f"{fmt_ratio(gen_hand, LOOP_GEN_VS_HAND):>11}"
    else:
        row += f"{fmt_ratio(gen_hand, GEN_VS_HAND if label != 'small' else None):>11}"
    row += f"{fmt_ratio(hand_t / fwd, GRAD_VS_FORWARD if large else None):>11}"
    row += f"{fmt_ratio(gen_t / fwd if gen_t else None, GRAD_VS_FORWARD if large else None):>11}"
    print(row, flush=True)

    if large:
        mem_fwd = peak_memory(lambda: fn(**inputs))
        mem_hand = peak_memory(lambda: hand(**inputs))
        mem_gen = peak_memory(lambda: generated(**inputs)) if times["generated"] else None
        ratio = mem_gen / mem_hand if mem_gen is not None else None
        print(
            f"   peak memory at large: forward {fmt_bytes(mem_fwd)}, hand {fmt_bytes(mem_hand)}, "
            f"generated {fmt_bytes(mem_gen)}, generated/hand {fmt_ratio(ratio, MEMORY_RATIO)}"
        )
        return (name, fwd, hand_t, gen_t, {p: times[p] for p in peers}, ratio)
    return None


def run_example(
    name: str, sizes: list[int], peers: list[str], budget: float, summary: list
) -> None:
    fn_name, wrt = HAND.EXAMPLES[name]
    path = EXAMPLES_DIR / f"{name}.py"
    fn = getattr(load(path, f"bench_source_{name}"), fn_name)
    hand = getattr(HAND, f"{name}_value_and_grad")
    generated, gen_note = find_generated(name, fn_name, wrt)

    print(
        f"\n== {name}: {fn_name}({', '.join(inspect.signature(fn).parameters)}) --wrt {','.join(wrt)}"
    )
    if gen_note:
        print(f"   generated: skipped, {gen_note}")
    columns = ["forward", "hand", "generated", *peers]
    head = f"   {'size':<34}" + "".join(f"{c:>11}" for c in columns)
    head += f"{'gen/hand':>11}{'hand/fwd':>11}{'gen/fwd':>11}"
    print(head)
    notes: list[str] = []

    ex = Example(name, path, fn_name, wrt, fn, hand, generated)
    for i in sizes:
        large = measure_size(ex, i, columns, peers, budget, notes)
        if large is not None:
            summary.append(large)
        gc.collect()

    for note in notes:
        print(f"   note: {note}")


# -- environment -------------------------------------------------------------------------------


def blas_summary() -> list[str]:
    lines = []
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            lib = Path(info.get("filepath", "?")).name
            what = f"{info.get('internal_api', '?')} {info.get('version') or ''}".strip()
            arch = f", {info['architecture']}" if info.get("architecture") else ""
            lines.append(
                f"{what}{arch}: {info.get('num_threads')} threads ({lib}, via threadpoolctl)"
            )
    except ImportError:
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            lines.append(
                f"{blas.get('name')} {blas.get('version')} (np.show_config; threads unknown)"
            )
        except Exception as e:
            lines.append(f"unknown ({type(e).__name__}: {e})")
    env = [
        f"{v}={os.environ[v]}"
        for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
        if v in os.environ
    ]
    lines.append("thread env: " + (" ".join(env) if env else "none set"))
    return lines


def load_note() -> str:
    """The load average: other processes on the machine make every figure below noisier."""
    if not hasattr(os, "getloadavg"):
        return "load average: unknown"
    one, five, _ = os.getloadavg()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {cpus} CPUs"
    if one > 0.5:
        text += (
            ": other processes compete for the cores, so times are noisy and multi-threaded"
            " tools (OpenBLAS, PyTorch's OpenMP) can stall at their barriers"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    global EXAMPLES_DIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small and medium sizes, shorter timings"
    )
    parser.add_argument("--only", help="comma-separated example names")
    parser.add_argument("--no-peers", action="store_true", help="skip autograd, JAX and PyTorch")
    parser.add_argument("--budget", type=float, default=0.2, help="seconds of timing per figure")
    parser.add_argument(
        "--examples-dir",
        type=Path,
        default=EXAMPLES_DIR,
        help="where <name>.py and <name>_grad.py are (default: generated_examples/)",
    )
    args = parser.parse_args(argv)
    EXAMPLES_DIR = args.examples_dir.resolve()

    names = list(HAND.EXAMPLES)
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"unknown examples {unknown}; known: {names}")
        names = [n for n in names if n in wanted]
    sizes = [0, 1] if args.quick else [0, 1, 2]
    budget = args.budget / 2 if args.quick else args.budget

    versions = {} if args.no_peers else peer_versions()
    peers = [p for p, v in versions.items() if v[:1].isdigit()]
    if "torch" in peers:
        import torch  # noqa: F401  (loads its own thread pool, so the summary below lists it)

    print("srcdiff NumPy gradient benchmark (issue 3): seconds per call, best of several runs")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable)"
    )
    for line in blas_summary():
        print(f"BLAS: {line}")
    print(load_note())
    if args.no_peers:
        print("peers: skipped (--no-peers)")
    else:
        print("peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        if "torch" in peers:
            import torch

            print(f"torch threads: {torch.get_num_threads()}")
    print(
        f"targets: generated/hand <= {GEN_VS_HAND} at medium and large; gradient/forward <= "
        f"{GRAD_VS_FORWARD} at large; peak memory generated/hand <= {MEMORY_RATIO} at large"
    )
    print(
        "forward = the source function alone; hand = benchmarks/handwritten.py; the others "
        "compute value and gradients; ratios use the best times"
    )

    summary: list = []
    started = time.perf_counter()
    for name in names:
        try:
            run_example(name, sizes, peers, budget, summary)
        except Exception:
            print(f"\n== {name}: benchmark failed")
            traceback.print_exc(file=sys.stdout)

    if summary:
        print("\n== at the large size, time relative to the hand-written gradient")
        print(
            f"   {'example':<28}{'hand/fwd':>10}{'generated':>11}"
            + "".join(f"{p:>11}" for p in peers)
            + f"{'gen mem':>10}"
        )
        for name, fwd, hand_t, gen_t, peer_t, mem in summary:
            cells = [fmt_ratio(gen_t / hand_t if gen_t else None)]
            cells += [fmt_ratio(peer_t[p] / hand_t if peer_t[p] else None) for p in peers]
            print(
                f"   {name:<28}{fwd and hand_t / fwd:>10.2f}"
                + "".join(f"{c:>11}" for c in cells)
                + f"{fmt_ratio(mem):>10}"
            )
    print(
        "\nmemory: tracemalloc peak during one call above the memory traced before it (NumPy "
        "reports its array buffers to tracemalloc), returned value and gradients included; "
        "JAX and PyTorch allocations are not traced, so they are not compared"
    )
    print(f"total {time.perf_counter() - started:.0f} s; at the end, {load_note()}")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception:  # a benchmark reports, it does not fail
        traceback.print_exc(file=sys.stdout)
    sys.exit(0)
