/* The `wasm-module` import ABI (docs/wasm-abi.md) for C: module "pipeless". */
#ifndef PIPELESS_MODULE_H
#define PIPELESS_MODULE_H
typedef unsigned char uint8_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#define PLM(name) __attribute__((import_module("pipeless"), import_name(#name)))
#define PLM_EXPORT(name) __attribute__((export_name(#name)))

typedef struct { uint32_t width, height, channels, reserved; uint64_t index; double pts; } plm_frame_info;
typedef struct { float x1, y1, x2, y2, score; } plm_detection;
typedef struct { int32_t x, y, width, height; } plm_rect;
typedef struct { int32_t x, y, width, height; uint32_t rgb; int32_t thickness; const char *label; uint32_t label_len; } plm_box;

PLM(frame_info) void plm_frame_info_get(plm_frame_info *out);
PLM(detections_count) int32_t plm_detections_count(void);
PLM(detections_get) int32_t plm_detections_get(plm_detection *out, int32_t cap);
PLM(detection_label) int32_t plm_detection_label(int32_t i, char *out, int32_t cap);
PLM(detections_set) void plm_detections_set(const plm_detection *d, int32_t n, const char *labels, int32_t len);
PLM(blur) void plm_blur(const plm_rect *r, int32_t n, int32_t kernel);
PLM(pixelate) void plm_pixelate(const plm_rect *r, int32_t n, int32_t block);
PLM(fill) void plm_fill(const plm_rect *r, int32_t n, uint32_t rgb);
PLM(draw_boxes) void plm_draw_boxes(const plm_box *b, int32_t n);
PLM(frame_copy_in) int32_t plm_frame_copy_in(uint8_t *out, int32_t cap);
PLM(frame_copy_out) void plm_frame_copy_out(const uint8_t *src, int32_t len);
PLM(emit) void plm_emit(const char *json, int32_t len);
PLM(log) void plm_log(int32_t level, const char *msg, int32_t len);
PLM(set_error) void plm_set_error(const char *msg, int32_t len);

static inline int32_t plm_f2i(float v) {
    if (!(v == v)) return 0;
    if (v > 16777216.0f) return 16777216;
    if (v < -16777216.0f) return -16777216;
    return (int32_t)v;
}
#endif
