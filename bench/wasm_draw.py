"""Per-frame cost of the shipped draw_detections filter (10 boxes) per language vs native cv2.

    python -m pipeless.bench.wasm_draw [--iters 300] [--rounds 7] [--size 176x144]

Native is the same drawing done in-process: boxes and "label NN%" tags from
frame.detections, drawn with the same cv2 calls the host makes. Each wasm
filter runs the real path: process crossing, get-detections, one batched
draw-boxes. Methods are interleaved round by round and the median round is
reported, so a busy machine skews them alike. Also printed: the bare
crossing costs of the lean call path.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import cv2

from pipeless.protocol.messages import Detection
from pipeless.workers.filters.registry import build_filter
from pipeless.workers.frame import Frame
from pipeless.workers.wasm import ops
from pipeless.workers.wasm.testing import LANGS, component, config, frames


def ten_detections(w: int, h: int) -> list[Detection]:
    out = []
    for i in range(10):
        x, y = (i % 5) * w / 5 + 3, (i // 5) * h / 2 + 14
        out.append(Detection("face", 0.5 + i * 0.05, [x, y, x + w / 6, y + h / 3]))
    return out


def native_draw(frame: Frame) -> None:
    ops.draw_boxes(
        frame.image,
        [(ops.box_to_rect(d.box), (0, 255, 0), 2, ops.detection_tag(d.label, d.score)) for d in frame.detections],
    )


def stock_api_draw(img, dets: list[Detection]) -> Callable[[], Any]:  # type: ignore[no-untyped-def]
    """The same C draw_detections through wasmtime-py's stock component API (for comparison)."""
    from wasmtime import Store
    from wasmtime.component import Linker, Record, ResourceHost, ResourceType

    from pipeless.workers.wasm import engine, schema

    eng = engine.engine()
    frame = Frame(img.copy(), "bench", 0, 0.0, detections=dets)

    def get_dets(store, f):  # type: ignore[no-untyped-def]
        f.drop(store)
        out = []
        for d in frame.detections:
            r, b = Record(), Record()
            b.x1, b.y1, b.x2, b.y2 = d.box
            r.label, r.score, r.box = d.label, d.score, b
            out.append(r)
        return out

    def draw(store, f, boxes):  # type: ignore[no-untyped-def]
        f.drop(store)
        ops.draw_boxes(frame.image, [((b.rect.x, b.rect.y, b.rect.width, b.rect.height),
                                      (b.color.r, b.color.g, b.color.b), b.thickness, b.label) for b in boxes])

    lk = Linker(eng)
    with lk.root() as root:
        with root.add_instance(schema.iface("types")):
            pass
        with root.add_instance(schema.iface("frame")) as fr:
            fr.add_resource("frame", ResourceType.host(99), lambda s, rep: None)
            fr.add_func("[method]frame.draw-boxes", draw)
        with root.add_instance(schema.iface("detections")) as d:
            d.add_func("get-detections", get_dets)
    store = Store(eng)
    store.set_epoch_deadline(1 << 40)
    inst = lk.instantiate(store, engine.load(component("c", "draw_detections"), "component").code)
    init, proc = inst.get_func(store, "init"), inst.get_func(store, "process")
    init(store, "{}")
    init.post_return(store)
    handle = ResourceHost.borrow(1, 99)

    def call() -> None:
        proc(store, handle)
        proc.post_return(store)
    return call


def per_call_us(fn: Callable[[], Any], iters: int) -> float:
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t) / iters * 1e6


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--size", default="176x144", help="frame size WxH (the sample clip is 176x144)")
    ap.add_argument("--stock", action="store_true", help="also time wasmtime-py's stock component API (slow)")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    img = cv2.resize(frames(1)[0], (w, h))
    dets = ten_detections(w, h)

    methods: dict[str, Callable[[], Any]] = {}
    frame_native = Frame(img.copy(), "bench", 0, 0.0, detections=dets)
    methods["native"] = lambda: native_draw(frame_native)
    for lang in LANGS:
        flt = build_filter(config(f"draw-{lang}", component(lang, "draw_detections")))
        fr = Frame(img.copy(), "bench", 0, 0.0, detections=dets)
        methods[lang] = (lambda f, x: lambda: f.process(x))(flt, fr)
    if args.stock:
        methods["c, stock wasmtime-py API"] = stock_api_draw(img, dets)
    # bare crossings: a guest that only drops its borrow (one crossing in), and
    # one that makes 1000 frame.width host calls
    trivial = build_filter(config("trivial", component("c", "hostile/keepborrow")))
    odd = Frame(img.copy(), "bench", 1, 0.0)
    methods["crossing: process only"] = lambda: trivial.process(odd)
    many = build_filter(config("crossings", component("c", "hostile/crossings")))
    plain = Frame(img.copy(), "bench", 0, 0.0)
    methods["crossing: process + 1000 host calls"] = lambda: many.process(plain)

    for fn in methods.values():  # warm up
        per_call_us(fn, 20)
    samples: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(args.rounds):
        for name, fn in methods.items():
            samples[name].append(per_call_us(fn, args.iters))
    med = {k: statistics.median(v) for k, v in samples.items()}

    print(f"draw_detections, 10 boxes with labels, {w}x{h} frame, median of {args.rounds} rounds x {args.iters} calls")
    print(f"  {'native cv2':<34} {med['native']:8.1f} us/frame")
    for lang in LANGS:
        print(f"  {'wasm ' + lang:<34} {med[lang]:8.1f} us/frame   ratio {med[lang] / med['native']:.2f}x native")
    if args.stock:
        k = "c, stock wasmtime-py API"
        print(f"  {k:<34} {med[k]:8.1f} us/frame   ratio {med[k] / med['native']:.2f}x native")
    print(f"  {'crossing: process only':<34} {med['crossing: process only']:8.1f} us/call")
    host_call = (med["crossing: process + 1000 host calls"] - med["crossing: process only"]) / 1000
    print(f"  {'crossing: one host call (frame.width)':<34} {host_call:8.1f} us/call")


if __name__ == "__main__":
    main()
