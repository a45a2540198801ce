"""Frame -> model-input tensor, and model-input boxes -> frame boxes.

Workers call `letterbox_into` once per frame to fill their slot's tensor area
in shared memory, so the inference process only has to stack ready tensors.
The inference process later calls `geometry` (cheap, pure arithmetic) with the
frame's source size to get the very same mapping back and `to_source` to put
the model's boxes into source pixels. Both sides therefore must agree on the
arithmetic exactly, which is why the mapping lives in one small function.

Coordinates are continuous pixel-edge coordinates: the left edge of the
source image is x = 0 and its right edge is x = src_w, so a box (x1, y1, x2,
y2) maps to the model input as x_in = x_src * scale_x + pad_x. This is the
convention cv2.resize uses for its area mapping, so no half-pixel fix-ups.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import cv2
import numpy as np

from pipeless.protocol.messages import ModelInput

__all__ = ["Letterbox", "geometry", "letterbox_into", "to_source"]


class Letterbox(NamedTuple):
    """Source pixels -> model-input pixels: x_in = x_src * scale_x + pad_x (same for y)."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float


def _placement(src_w: int, src_h: int, spec: ModelInput) -> tuple[int, int, int, int]:
    """Integer (left, top, width, height) of the resized image inside the input.

    Integers because the image is really resized to whole pixels; the scales in
    `geometry` are derived from these integers so boxes map back exactly onto
    the pixels the model saw (not onto an idealised, fractional placement).
    """
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"source size must be positive, got {src_w}x{src_h}")
    dst_w, dst_h = spec.width, spec.height
    if not spec.letterbox:
        return 0, 0, dst_w, dst_h
    s = min(dst_w / src_w, dst_h / src_h)
    new_w = min(dst_w, max(1, int(round(src_w * s))))
    new_h = min(dst_h, max(1, int(round(src_h * s))))
    return (dst_w - new_w) // 2, (dst_h - new_h) // 2, new_w, new_h


def geometry(src_w: int, src_h: int, spec: ModelInput) -> Letterbox:
    """The mapping `letterbox_into` applies to a src_w x src_h frame.

    spec.letterbox True keeps the aspect ratio and centres the image with
    padding (what detectors trained on letterboxed data expect); False
    stretches the frame over the whole input.
    """
    left, top, new_w, new_h = _placement(src_w, src_h, spec)
    return Letterbox(new_w / src_w, new_h / src_h, float(left), float(top))


def _pad(spec: ModelInput) -> float:
    """The padding as a tensor value: pad_value is a pixel value (e.g. YOLO's grey 114)."""
    return float(spec.pad_value) * spec.scale + spec.offset


_local = threading.local()


def _scratch(tag: str, shape: tuple[int, ...]) -> np.ndarray:
    """A per-thread uint8 work buffer, reused across frames.

    Fresh temporaries of a few hundred KB are not free: glibc hands them out
    as new mmap'd pages, and touching those pages costs more than the pixel
    work itself (measured: cv2.split of a 587x480 image 0.06 ms into reused
    buffers, 0.8 ms into new ones). A worker letterboxes the same sizes frame
    after frame, so a tiny cache keyed by shape removes that cost.
    """
    cache: dict[tuple[str, tuple[int, ...]], np.ndarray] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = (tag, shape)
    buf = cache.get(key)
    if buf is None:
        if len(cache) >= 8:  # many stream sizes: keep memory bounded
            cache.clear()
        buf = cache[key] = np.empty(shape, np.uint8)
    return buf


def letterbox_into(image: np.ndarray, tensor: np.ndarray, spec: ModelInput) -> Letterbox:
    """Fill `tensor` (spec.shape, float32, written in place) from a BGR uint8 frame.

    `image` is only read (it is the slot's pixels, which the output and the
    filters still need untouched). `tensor` is a view into shared memory, so
    every write goes through slices or `out=`; rebinding it would silently
    write into a private copy the inference process never sees.

    Order of work, chosen for speed: resize the uint8 frame first (usually a
    big frame shrinks to a small input, so all later per-pixel work is on the
    small image), then reorder channels on the small uint8 image (colour swap
    for NHWC, planar split for NCHW) into reused buffers, then convert to
    float with scale and offset in one ufunc writing straight into the
    tensor. Only the border strips are filled with the pad value.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.shape} {image.dtype}")
    if tensor.shape != spec.shape or tensor.dtype != np.float32:
        raise ValueError(f"expected a float32 tensor of shape {spec.shape}, got {tensor.shape} {tensor.dtype}")
    src_h, src_w = image.shape[:2]
    left, top, new_w, new_h = _placement(src_w, src_h, spec)
    if (new_w, new_h) == (src_w, src_h):
        small = image  # read-only from here on: it is the shared frame
    else:
        small = cv2.resize(image, (new_w, new_h), dst=_scratch("resized", (new_h, new_w, 3)),
                           interpolation=cv2.INTER_LINEAR)
    rgb = spec.color == "RGB"
    scale = np.float32(spec.scale)
    offset = np.float32(spec.offset)
    right, bottom = left + new_w, top + new_h

    if spec.layout == "NHWC":
        if rgb:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=_scratch("rgb", (new_h, new_w, 3)))
        region = tensor[top:bottom, left:right]
        planes: tuple[np.ndarray, ...] = (tensor,)
    else:
        # Contiguous planes in tensor order; cv2.split writes into the views given.
        planar = _scratch("planar", (3, new_h, new_w))
        cv2.split(small, [planar[2], planar[1], planar[0]] if rgb else [planar[0], planar[1], planar[2]])
        small = planar
        region = tensor[:, top:bottom, left:right]
        planes = tuple(tensor[c] for c in range(3))
    np.multiply(small, scale, out=region, dtype=np.float32)
    if offset:
        np.add(region, offset, out=region)

    # Border strips only: top and bottom full width, left and right in between.
    pad = _pad(spec)
    for p in planes:
        if top:
            p[:top] = pad
        if bottom < spec.height:
            p[bottom:] = pad
        if left:
            p[top:bottom, :left] = pad
        if right < spec.width:
            p[top:bottom, right:] = pad
    return Letterbox(new_w / src_w, new_h / src_h, float(left), float(top))


def to_source(boxes: np.ndarray, geom: Letterbox, src_w: int, src_h: int) -> np.ndarray:
    """(N, 4) x1y1x2y2 boxes in model-input pixels -> source pixels, clipped to the frame.

    Clipping matters because detectors happily predict boxes reaching into the
    padding or past the edge; downstream code (blurring, cropping) indexes the
    frame with these numbers.
    """
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    out = np.empty_like(b)
    out[:, 0::2] = (b[:, 0::2] - geom.pad_x) / geom.scale_x
    out[:, 1::2] = (b[:, 1::2] - geom.pad_y) / geom.scale_y
    np.clip(out[:, 0::2], 0.0, float(src_w), out=out[:, 0::2])
    np.clip(out[:, 1::2], 0.0, float(src_h), out=out[:, 1::2])
    return out
