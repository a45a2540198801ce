"""The image operations behind the frame resource, on the frame's numpy view, in place.

Both wasm kinds (component and core module) call these, so a filter gets the
same pixels whatever its language or ABI. Every argument is validated here;
a bad one raises HostCallError, which fails the frame with kind "host-call".
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np

from pipeless.protocol.messages import Detection

COORD_LIMIT = 1 << 24
REGION_BYTES_MAX = 65536
FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE = 0.4


class HostCallError(Exception):
    """A guest called a host operation with arguments the host refuses."""


Rect = tuple[int, int, int, int]
Color = tuple[int, int, int]


def _check_rect(r: Rect) -> None:
    x, y, w, h = r
    if w < 0 or h < 0:
        raise HostCallError(f"rect {r}: negative width or height")
    if not (-COORD_LIMIT <= x <= COORD_LIMIT and -COORD_LIMIT <= y <= COORD_LIMIT
            and w <= COORD_LIMIT and h <= COORD_LIMIT):
        raise HostCallError(f"rect {r}: coordinates beyond +-{COORD_LIMIT}")


def clip(r: Rect, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Validated rect -> (x0, y0, x1, y1) clipped to the frame, or None when nothing is left."""
    _check_rect(r)
    x, y, w, h = r
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, width), min(y + h, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def inside(r: Rect, width: int, height: int) -> tuple[int, int, int, int]:
    """Validated rect wholly inside the frame -> (x0, y0, x1, y1)."""
    _check_rect(r)
    x, y, w, h = r
    if w == 0 or h == 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise HostCallError(f"rect {r} is not inside the {width}x{height} frame")
    return x, y, x + w, y + h


def bgr(c: Color) -> tuple[int, int, int]:
    r, g, b = c
    return (int(b), int(g), int(r))


def _thickness(t: int, allow_fill: bool = False) -> int:
    if allow_fill and t == -1:
        return -1
    if not 1 <= t <= 64:
        raise HostCallError(f"thickness {t} out of range 1..64" + (" (or -1)" if allow_fill else ""))
    return t


# --------------------------------------------------------------- regions

def blur(img: np.ndarray, regions: Sequence[Rect], kernel: int) -> None:
    if kernel < 1 or kernel > 255 or kernel % 2 == 0:
        raise HostCallError(f"blur kernel {kernel}: expected an odd size 1..255")
    h, w = img.shape[:2]
    for r in regions:
        c = clip(r, w, h)
        if c is None or kernel == 1:
            continue
        x0, y0, x1, y1 = c
        roi = img[y0:y1, x0:x1]
        roi[...] = cv2.GaussianBlur(roi, (kernel, kernel), 0, borderType=cv2.BORDER_REFLECT_101)


def pixelate(img: np.ndarray, regions: Sequence[Rect], block: int) -> None:
    if not 1 <= block <= 256:
        raise HostCallError(f"pixelate block {block}: expected 1..256")
    h, w = img.shape[:2]
    for r in regions:
        c = clip(r, w, h)
        if c is None or block == 1:
            continue
        x0, y0, x1, y1 = c
        roi = img[y0:y1, x0:x1]
        rw, rh = x1 - x0, y1 - y0
        small = cv2.resize(roi, (max(1, -(-rw // block)), max(1, -(-rh // block))), interpolation=cv2.INTER_AREA)
        roi[...] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)


def fill(img: np.ndarray, regions: Sequence[Rect], color: Color) -> None:
    h, w = img.shape[:2]
    value = bgr(color)
    for r in regions:
        c = clip(r, w, h)
        if c is not None:
            x0, y0, x1, y1 = c
            img[y0:y1, x0:x1] = value


def convert_color(img: np.ndarray, region: Rect | None, conversion: int) -> None:
    h, w = img.shape[:2]
    if region is None:
        x0, y0, x1, y1 = 0, 0, w, h
    else:
        c = clip(region, w, h)
        if c is None:
            return
        x0, y0, x1, y1 = c
    roi = img[y0:y1, x0:x1]
    if conversion == 0:  # swap-rb
        roi[...] = roi[..., ::-1].copy()
    elif conversion == 1:  # grayscale
        roi[...] = cv2.cvtColor(np.ascontiguousarray(roi), cv2.COLOR_BGR2GRAY)[..., None]
    elif conversion == 2:  # invert
        np.subtract(255, roi, out=roi)
    else:
        raise HostCallError(f"unknown colour conversion {conversion}")


def copy_region(img: np.ndarray, src: Rect, dst: Rect) -> None:
    h, w = img.shape[:2]
    sx0, sy0, sx1, sy1 = inside(src, w, h)
    dx0, dy0, dx1, dy1 = inside(dst, w, h)
    patch = img[sy0:sy1, sx0:sx1].copy()
    if patch.shape[:2] != (dy1 - dy0, dx1 - dx0):
        patch = cv2.resize(patch, (dx1 - dx0, dy1 - dy0), interpolation=cv2.INTER_LINEAR)
    img[dy0:dy1, dx0:dx1] = patch


def read_region(img: np.ndarray, region: Rect) -> np.ndarray:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = inside(region, w, h)
    n = (x1 - x0) * (y1 - y0) * 3
    if n > REGION_BYTES_MAX:
        raise HostCallError(f"read-region of {n} bytes: at most {REGION_BYTES_MAX} (use the image ops instead)")
    return np.ascontiguousarray(img[y0:y1, x0:x1]).reshape(-1)


def write_region(img: np.ndarray, region: Rect, pixels: bytes) -> None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = inside(region, w, h)
    n = (x1 - x0) * (y1 - y0) * 3
    if n > REGION_BYTES_MAX:
        raise HostCallError(f"write-region of {n} bytes: at most {REGION_BYTES_MAX}")
    if len(pixels) != n:
        raise HostCallError(f"write-region {region}: expected {n} bytes, got {len(pixels)}")
    img[y0:y1, x0:x1] = np.frombuffer(pixels, np.uint8).reshape(y1 - y0, x1 - x0, 3)


# --------------------------------------------------------------- drawing
# box-shape: (rect, color, thickness, label); line-shape: (start, end, color,
# thickness); circle-shape: (center, radius, color, thickness); text-shape:
# (origin, text, color, scale, thickness). Tuples in WIT field order.

def draw_boxes(img: np.ndarray, boxes: Sequence[tuple[Rect, Color, int, str]]) -> None:
    for rect, color, thickness, label in boxes:
        _check_rect(rect)
        t = _thickness(thickness)
        x, y, w, h = rect
        c = bgr(color)
        cv2.rectangle(img, (x, y), (x + max(w, 1) - 1, y + max(h, 1) - 1), c, t)
        if label:
            _tag(img, x, y, label, c)


def _tag(img: np.ndarray, x: int, y: int, label: str, c: tuple[int, int, int]) -> None:
    """The label on a filled tag of the box colour, above the box (inside it at the top edge)."""
    (tw, th), base = cv2.getTextSize(label, FONT, LABEL_SCALE, 1)
    tag_h = th + base + 2
    top = y - tag_h if y - tag_h >= 0 else y
    cv2.rectangle(img, (x, top), (x + tw + 2, top + tag_h), c, -1)
    ink = (0, 0, 0) if (0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2]) > 127 else (255, 255, 255)
    cv2.putText(img, label, (x + 1, top + th + 1), FONT, LABEL_SCALE, ink, 1, cv2.LINE_AA)


def draw_lines(img: np.ndarray, lines: Sequence[tuple]) -> None:
    for start, end, color, thickness in lines:
        for p in (start, end):
            if not all(-COORD_LIMIT <= v <= COORD_LIMIT for v in p):
                raise HostCallError(f"point {p} beyond +-{COORD_LIMIT}")
        cv2.line(img, tuple(start), tuple(end), bgr(color), _thickness(thickness), cv2.LINE_AA)


def draw_circles(img: np.ndarray, circles: Sequence[tuple]) -> None:
    for center, radius, color, thickness in circles:
        if not all(-COORD_LIMIT <= v <= COORD_LIMIT for v in center) or not 0 <= radius <= COORD_LIMIT:
            raise HostCallError(f"circle at {center} radius {radius} out of range")
        cv2.circle(img, tuple(center), radius, bgr(color), _thickness(thickness, allow_fill=True), cv2.LINE_AA)


def draw_texts(img: np.ndarray, texts: Sequence[tuple]) -> None:
    for origin, text, color, scale, thickness in texts:
        if not all(-COORD_LIMIT <= v <= COORD_LIMIT for v in origin):
            raise HostCallError(f"text origin {origin} out of range")
        if not (0 < scale <= 16) or math.isnan(scale):
            raise HostCallError(f"text scale {scale}: expected 0 < scale <= 16")
        if len(text) > 4096:
            raise HostCallError("text longer than 4096 characters")
        cv2.putText(img, text, tuple(origin), FONT, float(scale), bgr(color), _thickness(thickness), cv2.LINE_AA)


# --------------------------------------------------------------- model input

def prepare_input(frame: Any, region: Rect | None) -> tuple[float, float, float, float]:
    """Letterbox the frame (or a crop of it) into frame.tensor; the frame -> tensor mapping."""
    spec, tensor = frame.model_input, frame.tensor
    if spec is None or tensor is None:
        raise HostCallError("prepare-input: this frame has no model input (pre stage with inference only)")
    img = frame.image
    h, w = img.shape[:2]
    ox = oy = 0
    if region is not None:
        c = clip(region, w, h)
        if c is None:
            raise HostCallError(f"prepare-input: region {region} is outside the frame")
        ox, oy, x1, y1 = c
        img = img[oy:y1, ox:x1]
    sx, sy, px, py = _letterbox(img, tensor, spec)
    return float(sx), float(sy), float(px - ox * sx), float(py - oy * sy)


def _letterbox(img: np.ndarray, tensor: np.ndarray, spec: Any) -> tuple[float, float, float, float]:
    try:
        from pipeless.workers.inference.letterbox import letterbox_into
    except ImportError:  # the shared helper is not there: same arithmetic, minimal code
        letterbox_into = None
    if letterbox_into is not None:
        g = letterbox_into(img, tensor, spec)
        return g.scale_x, g.scale_y, g.pad_x, g.pad_y
    src_h, src_w = img.shape[:2]
    if spec.letterbox:
        s = min(spec.width / src_w, spec.height / src_h)
        nw, nh = min(spec.width, max(1, round(src_w * s))), min(spec.height, max(1, round(src_h * s)))
        left, top = (spec.width - nw) // 2, (spec.height - nh) // 2
    else:
        nw, nh, left, top = spec.width, spec.height, 0, 0
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if spec.color == "RGB":
        small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    full = np.full((spec.height, spec.width, 3), float(spec.pad_value), np.float32)
    full[top:top + nh, left:left + nw] = small
    full = full * np.float32(spec.scale) + np.float32(spec.offset)
    tensor[...] = full if spec.layout == "NHWC" else full.transpose(2, 0, 1)
    return nw / src_w, nh / src_h, float(left), float(top)


# --------------------------------------------------------------- detections

def detections_out(dets: Sequence[Detection]) -> list[tuple[str, float, tuple[float, float, float, float]]]:
    out = []
    for d in dets:
        b = d.box
        if len(b) != 4:
            raise HostCallError(f"detection {d.label!r} has a box of {len(b)} numbers, expected 4")
        out.append((d.label, float(d.score), (float(b[0]), float(b[1]), float(b[2]), float(b[3]))))
    return out


def detections_in(items: Sequence[tuple]) -> list[Detection]:
    return [Detection(label, float(score), [float(v) for v in box]) for label, score, box in items]


def _f2i(v: float) -> int:
    """Float -> int as the guests do it: NaN -> 0, clamp to +-2^24, truncate toward zero."""
    v = float(np.float32(v))
    if v != v:
        return 0
    return int(max(-COORD_LIMIT, min(COORD_LIMIT, v)))


def box_to_rect(box: Sequence[float]) -> Rect:
    """The one detection-box -> rect conversion every shipped filter uses (see filters/c/pipeless.h)."""
    x1, y1, x2, y2 = (_f2i(v) for v in box)
    return x1, y1, max(x2 - x1, 0), max(y2 - y1, 0)


def detection_tag(label: str, score: float) -> str:
    """'<label> <percent>%' as draw_detections writes it (percent = int(score*100 + 0.5), 0..100)."""
    s = float(np.float32(score)) * 100.0 + 0.5
    pct = 0 if s < 0 else 100 if s > 100 else int(s)
    return f"{label} {pct}%"
