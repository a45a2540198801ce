"""The bench's table: the same figures as the JSON, for a person."""

from __future__ import annotations

from typing import Any

STAGES = ("decode", "pre", "infer", "post", "output", "dispatch")


def _f(value: Any, digits: int = 1, width: int = 7) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.{digits}f}".rjust(width)
    return str(value).rjust(width)


def _mb(n: int | None) -> str:
    if not n:
        return "0"
    if n >= 2**20:
        return f"{n / 2**20:.1f}M"
    if n >= 1024:
        return f"{n / 1024:.0f}K"
    return f"{n}B"


def machine_lines(report: dict) -> list[str]:
    m = report["machine"]
    gpu = m.get("gpu") or "none"
    return [
        f"pipeless bench ({report['mode']}) run {report['run_id'][:8]} at {report['started_at']}, "
        f"{report['seconds']} s",
        f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['physical_cores']} cores), "
        f"{m['ram_gib']} GiB RAM, GPU: {gpu}",
        f"software: python {m['python']}, onnxruntime {m['onnxruntime']} ({', '.join(m['providers_built_in'])}), "
        f"opencv {m['opencv']}, numpy {m['numpy']}; {m['platform']}",
    ]


HEADER = (f"{'':32}{'fps':>8}{'x base':>7}{'lat p50':>8}{'p99':>7} |" + "".join(f"{s:>9}" for s in STAGES)
          + f" |{'copied':>8}{'msgs':>6}{'peak RSS':>9}{'CPU%':>6}{'oth%':>6}")


def row_line(row: dict) -> str:
    lat = row.get("latency_ms") or {}
    stages = row.get("stages_ms") or {}
    b = row.get("bytes_per_frame") or {}
    procs = row.get("processes") or []
    rss = max((p["peak_rss_mb"] for p in procs), default=None)
    cpu = sum(p["cpu_percent"] or 0 for p in procs) if procs else None
    label = ("* " if row.get("baseline") else "  ") + row["label"]
    copied = b.get("total", 0) - (b.get("messages") or 0) if b else None
    return (f"{label:<32}{_f(row.get('fps'))}{_f(row.get('ratio'), 2)}{_f(lat.get('p50'), 2, 8)}"
            f"{_f(lat.get('p99'), 2)} |" + "".join(_f(stages.get(s), 2, 9) for s in STAGES)
            + f" |{_mb(copied) if b else '-':>8}{_mb(b.get('messages')) if b.get('messages') else '-':>6}"
            f"{_f(rss, 0, 8)}M{_f(cpu, 0, 6)}{_f(row.get('others_cpu_percent'), 0, 6)}")


def process_line(row: dict) -> str:
    parts = [f"{p['role']} {p['peak_rss_mb']:.0f}M {p['cpu_percent'] if p['cpu_percent'] is not None else '-'}%"
             for p in row.get("processes") or []]
    extra = []
    if row.get("provider"):
        extra.append(row["provider"].removesuffix("ExecutionProvider"))
    if row.get("batch_sizes"):
        bs = row["batch_sizes"]
        extra.append(f"batches mean {bs['mean']} max {bs['max']}")
    runs = row.get("fps_runs") or []
    if len(runs) > 1:
        extra.append("fps per round " + " ".join(f"{v:.0f}" if v else "-" for v in runs))
    if row.get("overhead_ms"):
        o = row["overhead_ms"]
        extra.append(f"overhead p50 {o['p50']} p99 {o['p99']} ms")
    return "      " + " | ".join(parts) + (f"   [{'; '.join(extra)}]" if extra else "")


def render(report: dict) -> str:
    lines = machine_lines(report)
    lines.append("")
    lines.append("frames/s: steady state (first result out to last); x base: / the starred row, same run;")
    lines.append("latency and stages in ms per frame (pipeless pre/infer/post: round trips incl. IPC, batching);")
    lines.append("copied: frame/tensor bytes written or read whole per frame (decode + encode are the least any")
    lines.append("system needs), pickled bytes included; msgs: socket bytes per frame; CPU%: all its processes,")
    lines.append("100 = one core; oth%: CPU other programs on the machine used meanwhile (unreliable figures if high)")
    for g in report["workloads"]:
        clip = g["clip"]
        lines.append("")
        if g.get("text"):  # a workload with its own table (wasm-draw): shown as it printed it, plus the ratios
            lines.append(f"== {g['name']}: {g['description']}")
            lines += ["   " + line for line in g["text"].rstrip().splitlines()[1:]]
            continue
        lines.append(f"== {g['name']}: {g['description']}; {clip['width']}x{clip['height']}, {clip['frames']} frames")
        if g.get("work"):
            lines.append(f"   work: {g['work']}")
        lines.append(HEADER)
        for row in g["rows"]:
            lines.append(row_line(row))
            lines.append(process_line(row))
    lines.append("")
    lines.append("targets:")
    for t in report["targets"]:
        state = {True: "MET ", False: "MISS", None: "n/a "}[t["met"]]
        measured = t["measured"]
        if isinstance(measured, dict):
            measured = ", ".join(
                f"{k}: " + (" / ".join(f"{kk.removesuffix('_ms')} {vv} ms" for kk, vv in v.items())
                            if isinstance(v, dict) else str(v)) for k, v in measured.items())
        lines.append(f"  [{state}] {t['target']}: {measured} (goal {t['goal']}; {t['from']})"
                     + (f" — {t['note']}" if t.get("note") else ""))
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
