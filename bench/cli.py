"""`pipeless-orch bench` (or `python -m pipeless.bench`): measure pipeless against its baselines.

--quick runs every workload on short clips (under 2 minutes on 2 cores);
without it the full suite runs longer clips and sweeps worker counts and batch
sizes. The table goes to stdout; --json FILE writes the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipeless.bench.clips import default_workdir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pipeless-orch bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short clips, fewer rows: under 2 minutes on 2 cores")
    mode.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the smoke test's few seconds
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    p.add_argument("--workdir", default=None,
                   help=f"cache for generated clips and run outputs (default {default_workdir()})")
    p.add_argument("--providers", default="",
                   help="comma-separated onnxruntime providers, e.g. cuda,cpu (default: the best that loads)")
    p.add_argument("--settle", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement wait up to SECONDS for other programs to leave the CPU idle "
                        "(each row also records how much CPU others used while it ran)")
    p.add_argument("--only", action="append", default=[], metavar="WORKLOAD",
                   help="run only workloads whose name starts with this (repeatable), e.g. heavy-720p")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from pipeless.bench.report import render
    from pipeless.bench.suite import Plan, run_suite

    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    plan = Plan.make(mode, set(args.only))
    workdir = os.path.abspath(os.path.expanduser(args.workdir or default_workdir()))
    providers = [p.strip() for p in args.providers.split(",") if p.strip()] or None

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    say(f"pipeless bench: {mode} mode, workdir {workdir} (run logs in {workdir}/runs/*/bench.log)")
    try:
        report = run_suite(plan, workdir, providers, say, args.settle)
    except KeyboardInterrupt:
        say("pipeless bench: interrupted")
        return 130
    if args.json:
        path = os.path.abspath(args.json)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
        say(f"pipeless bench: figures -> {path}")
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
