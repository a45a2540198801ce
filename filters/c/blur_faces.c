/*
 * blur_faces: Gaussian-blur every detection's box in place, in ONE blur call.
 * config: kernel (odd, default 31), label (only detections with this label;
 * default: all).
 */
#include "pipeless.h"

static uint32_t kernel = 31;

int pl_init(pl_str cfg, pl_str *error) {
    double k = pl_config_number(cfg, "kernel", 31);
    if (k < 1 || k > 255 || ((int32_t)k % 2) == 0) {
        *error = pl_cstr("kernel must be odd, 1..255");
        return 1;
    }
    kernel = (uint32_t)k;
    return 0;
}

int pl_process(pl_frame frame, pl_str *error) {
    (void)error;
    pl_detections dets = pl_get_detections(frame);
    if (dets.len == 0) return PL_OK;
    pl_rect *rects = pl_alloc(sizeof(pl_rect) * dets.len, 4);
    for (size_t i = 0; i < dets.len; i++) rects[i] = pl_box_rect(dets.ptr[i].box);
    pl_frame_blur(frame, rects, dets.len, kernel);
    return PL_OK;
}
