/* blur_faces as a plain core module (kind = "wasm-module"): same pixels as the components. */
#include "pipeless_module.h"

static plm_detection dets[256];
static plm_rect rects[256];
static int32_t kernel = 31;
static char config[256];

PLM_EXPORT(pl_alloc) void *pl_alloc(int32_t size) { return size <= (int32_t)sizeof config ? config : 0; }

PLM_EXPORT(pl_init) int32_t pl_init(const char *cfg, int32_t len) {
    /* {"kernel": N}: the first integer in the config, if any */
    int32_t k = 0, any = 0;
    for (int32_t i = 0; i < len; i++) {
        if (cfg[i] >= '0' && cfg[i] <= '9') { k = k * 10 + (cfg[i] - '0'); any = 1; }
        else if (any) break;
    }
    if (any) kernel = k;
    if (kernel < 1 || kernel > 255 || kernel % 2 == 0) {
        plm_set_error("kernel must be odd, 1..255", 26);
        return 1;
    }
    return 0;
}

PLM_EXPORT(pl_process) int32_t pl_process(void) {
    int32_t n = plm_detections_get(dets, 256);
    for (int32_t i = 0; i < n; i++) {
        int32_t x1 = plm_f2i(dets[i].x1), y1 = plm_f2i(dets[i].y1), x2 = plm_f2i(dets[i].x2), y2 = plm_f2i(dets[i].y2);
        rects[i].x = x1;
        rects[i].y = y1;
        rects[i].width = x2 > x1 ? x2 - x1 : 0;
        rects[i].height = y2 > y1 ? y2 - y1 : 0;
    }
    if (n) plm_blur(rects, n, kernel);
    return 0;
}
