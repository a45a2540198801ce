/*
 * draw_detections: every detection's box with a "label NN%" tag, in ONE
 * draw-boxes call.
 * config: r, g, b (box colour, default 0 255 0), thickness (default 2).
 */
#include "pipeless.h"

static pl_color color = {0, 255, 0};
static int32_t thickness = 2;

int pl_init(pl_str cfg, pl_str *error) {
    color.r = (uint8_t)pl_config_number(cfg, "r", 0);
    color.g = (uint8_t)pl_config_number(cfg, "g", 255);
    color.b = (uint8_t)pl_config_number(cfg, "b", 0);
    thickness = (int32_t)pl_config_number(cfg, "thickness", 2);
    if (thickness < 1 || thickness > 64) {
        *error = pl_cstr("thickness must be 1..64");
        return 1;
    }
    return 0;
}

/* "<label> <percent>%" with percent = int(score * 100 + 0.5) clamped to 0..100. */
static pl_str tag(pl_detection *d) {
    double s = (double)d->score * 100.0 + 0.5;
    int32_t pct = s < 0 ? 0 : s > 100 ? 100 : (int32_t)s;
    char *buf = pl_alloc(d->label.len + 6, 1);
    memcpy(buf, d->label.ptr, d->label.len);
    size_t n = d->label.len;
    buf[n++] = ' ';
    if (pct >= 100) buf[n++] = '1';
    if (pct >= 10) buf[n++] = (char)('0' + (pct / 10) % 10);
    buf[n++] = (char)('0' + pct % 10);
    buf[n++] = '%';
    pl_str r = {buf, n};
    return r;
}

int pl_process(pl_frame frame, pl_str *error) {
    (void)error;
    pl_detections dets = pl_get_detections(frame);
    if (dets.len == 0) return PL_OK;
    pl_box_shape *boxes = pl_alloc(sizeof(pl_box_shape) * dets.len, 4);
    for (size_t i = 0; i < dets.len; i++) {
        boxes[i].rect = pl_box_rect(dets.ptr[i].box);
        boxes[i].color = color;
        boxes[i].thickness = thickness;
        boxes[i].label = tag(&dets.ptr[i]);
    }
    pl_frame_draw_boxes(frame, boxes, dets.len);
    return PL_OK;
}
