"""`pipeless-orch`: the command users type. Errors they can fix are one line, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import threading

from pipeless.orchestrator.config import ConfigError, load
from pipeless.orchestrator.outputs import OutputError
from pipeless.orchestrator.router import PipelineError
from pipeless.orchestrator.run import install_signal_handlers, run_pipeline
from pipeless.orchestrator.sources import SourceError

USER_ERRORS = (ConfigError, SourceError, OutputError, PipelineError)

# Subcommands live in their own modules, each with `main(argv) -> int`, so the
# run path imports none of them.
SUBCOMMANDS = {
    "filter": "pipeless.orchestrator.filter_cli",  # new | build | run
    "bench": "pipeless.bench.cli",
    "top": "pipeless.orchestrator.top",
    "streams": "pipeless.orchestrator.streams_cli",
}


def _run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    stop = threading.Event()
    install_signal_handlers(stop)
    summary = run_pipeline(cfg, stop)
    frames = ", ".join(f"{k}: {v} frames" + (f" ({summary.dropped[k]} dropped)" if summary.dropped[k] else "")
                       for k, v in summary.frames.items())
    state = "done" if summary.completed else "stopped"
    print(f"pipeless: {state} in {summary.seconds:.1f} s — {frames}")
    for s in cfg.streams:
        if s.output:
            print(f"pipeless: video  {s.id} -> {s.output}")
    if cfg.results.file:
        print(f"pipeless: results -> {cfg.results.file}")
    if cfg.results.publish:
        print(f"pipeless: results were published on {cfg.results.publish}")
    return 0 if summary.completed else 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeless-orch", description=__doc__)
    parser.add_argument("-c", "--config", help="pipeline.toml to run")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    parser = build_parser()
    parser.epilog = "subcommands: " + ", ".join(SUBCOMMANDS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if not args.config:
        parser.error("give a pipeline with -c pipeline.toml")
    try:
        return _run(args)
    except USER_ERRORS as exc:
        print(f"pipeless: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
