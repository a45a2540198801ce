"""`pipeless-orch streams list|add|remove`: manage a running pipeline's streams over its control API.

    pipeless-orch streams list   [--control http://127.0.0.1:9090] [--token T] [--json]
    pipeless-orch streams add    --id door --input rtsp://10.0.0.7/s1 [--output out/door.mp4] [--restart on-error]
    pipeless-orch streams remove door

The token defaults to $PIPELESS_TOKEN. A refused request (4xx) prints the API's
JSON error as one line and exits 2. With the API on loopback, relative --input and
--output paths are taken from the current folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from rich import box
from rich.console import Console
from rich.table import Table

DEFAULT_CONTROL = "http://127.0.0.1:9090"
RESTART = ("never", "always", "on-error", "on-eos")


class CliError(Exception):
    """One line for the user; `code` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def call(base: str, method: str, path: str, token: str | None, body: dict | None = None,
         timeout: float = 35.0) -> object:
    """One request to the control API; the decoded JSON reply, or CliError with the API's message."""
    if "://" not in base:
        base = "http://" + base
    url = base.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            message = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            message = raw.decode(errors="replace").strip() or err.reason
        raise CliError(f"{message} (HTTP {err.code})", 2 if 400 <= err.code < 500 else 1) from None
    except urllib.error.URLError as err:
        reason = getattr(err.reason, "strerror", None) or err.reason
        raise CliError(f"cannot reach the control API at {base}: {reason} (is [control] http set?)") from None
    except (TimeoutError, OSError) as err:
        raise CliError(f"cannot reach the control API at {base}: {err}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise CliError(f"{method} {path}: the reply is not JSON: {raw[:80]!r}", 1) from None


def streams_table(streams: list[dict]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for name, justify in (("id", "left"), ("kind", "left"), ("state", "left"), ("size", "right"),
                          ("frames", "right"), ("dropped", "right"), ("reconnects", "right"), ("input", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "input", overflow="fold")
    for s in streams:
        table.add_row(s["id"], "live" if s["live"] else "file", "connected" if s["connected"] else "lost",
                      f"{s['width']}x{s['height']}", str(s["frames"]), str(s["dropped"]), str(s["reconnects"]),
                      s["input"])
    return table


def is_loopback(base: str) -> bool:
    host = urlsplit(base if "://" in base else "http://" + base).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def local_path(value: str) -> str:
    """A relative file path as the caller means it (their cwd), not the pipeline config's folder."""
    if "://" in value or value.startswith("/dev/") or value.isdigit() or os.path.isabs(value):
        return value
    return os.path.abspath(value)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--control", default=DEFAULT_CONTROL,
                        help=f"the pipeline's control API (default {DEFAULT_CONTROL})")
    common.add_argument("--token", default=os.environ.get("PIPELESS_TOKEN"),
                        help="bearer token (default $PIPELESS_TOKEN)")
    parser = argparse.ArgumentParser(prog="pipeless-orch streams", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True, metavar="list|add|remove")
    ls = sub.add_parser("list", parents=[common], help="the running streams")
    ls.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    add = sub.add_parser("add", parents=[common], help="start a stream")
    add.add_argument("--id", required=True)
    add.add_argument("--input", required=True, help="file, rtsp://, http(s)://, /dev/videoN")
    add.add_argument("--output", help="annotated video file")
    add.add_argument("--restart", choices=RESTART)
    rm = sub.add_parser("remove", parents=[common], help="stop a stream")
    rm.add_argument("id", nargs="?")
    rm.add_argument("--id", dest="id_opt", metavar="ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped: never fold paths at 80 columns
        console = Console(width=200)
    try:
        if args.action == "list":
            streams = call(args.control, "GET", "/streams", args.token)
            if args.json:
                print(json.dumps(streams, indent=2))
            elif streams:
                console.print(streams_table(streams))
            else:
                print("no streams")
        elif args.action == "add":
            # On this machine, relative paths mean the caller's folder; a remote pipeline gets them as typed.
            here = is_loopback(args.control)
            body = {"id": args.id, "input": local_path(args.input) if here else args.input}
            if args.output:
                body["output"] = local_path(args.output) if here else args.output
            if args.restart:
                body["restart"] = args.restart
            s = call(args.control, "POST", "/streams", args.token, body)
            print(f"added {s['id']}: {s['input']} ({'live' if s['live'] else 'file'}, {s['width']}x{s['height']})")
        else:
            stream_id = args.id or args.id_opt
            if not stream_id:
                parser.error("remove: give the stream id")
            s = call(args.control, "DELETE", f"/streams/{stream_id}", args.token)
            print(f"removed {s['id']} after {s['frames']} frames ({s['dropped']} dropped)")
        return 0
    except CliError as exc:
        print(f"pipeless: error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
