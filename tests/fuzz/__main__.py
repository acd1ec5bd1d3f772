"""``python -m tests.fuzz --minutes 10 [--seed N] [--report FILE]``: differential fuzzing.

Prints how many programs were generated, checked, skipped (and why), refused and failed, each
failure (shrunk) with its source, point, --wrt, --shapes and mismatch; exit status 1 on any
failure. Failures of the known, unfixed bugs listed in ``known.py`` (each tracked by a strict
xfail test) are counted apart and do not fail the run, unless ``--strict``.
"""

from __future__ import annotations

import argparse
import sys

from .run import run, write_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.fuzz",
        description="Differential fuzzing of srcdiff: random programs, their generated gradients "
        "against central differences and an independent AD system (autograd or JAX, if any).",
    )
    p.add_argument("--minutes", type=float, default=10.0, help="time budget (default 10)")
    p.add_argument("--examples", type=int, help="stop after this many programs")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    p.add_argument("--report", metavar="FILE", help="write the figures and failures as JSON")
    p.add_argument("--batch", type=int, default=50, help="programs per hypothesis run")
    p.add_argument("--mode", choices=["scalar", "array"], help="only this kind of program")
    p.add_argument(
        "--control",
        choices=["with", "without"],
        help="only programs with control flow (branches, loops, conditional expressions, lists), "
        "or only programs without (default: both, half each)",
    )
    p.add_argument(
        "--oracle", choices=["auto", "autograd", "jax", "none"], default="auto", help="AD oracle"
    )
    p.add_argument("--strict", action="store_true", help="fail on the known bugs of known.py too")
    p.add_argument("--max-failures", type=int, help="stop after this many failures")
    p.add_argument("--no-shrink", action="store_true", help="report failures unshrunk")
    p.add_argument(
        "--shrink-seconds", type=float, default=120.0, help="shrinking budget per failure"
    )
    args = p.parse_args(argv)

    def progress(text: str) -> None:
        print(text, flush=True)

    stats = run(
        minutes=args.minutes,
        examples=args.examples,
        seed=args.seed,
        batch=args.batch,
        oracle=args.oracle,
        shrink=not args.no_shrink,
        shrink_seconds=args.shrink_seconds,
        mode=args.mode,
        control={"with": True, "without": False, None: None}[args.control],
        progress=progress,
        strict=args.strict,
        max_failures=args.max_failures,
    )
    print(stats.summary())
    if args.report:
        write_report(stats, args.report)
    return 1 if stats.failed else 0


if __name__ == "__main__":
    sys.exit(main())
