/*
 * Hand-written C bindings for the WIT world pipeless:filter/filter@0.1.0
 * (the .wit files under wit/), freestanding: no libc, no WASI.
 *
 * A filter defines
 *     int  pl_init(pl_str config_json, pl_str *error);    // 0: ok
 *     int  pl_process(pl_frame frame, pl_str *error);      // PL_OK, PL_FAILED or PL_FATAL
 * and links pipeless.c, which provides the canonical-ABI exports (init,
 * process, cabi_realloc, cabi_post_*), the [resource-drop] of the frame
 * borrow, and a small allocator.
 *
 * Struct layouts below are the canonical ABI layouts of the WIT records
 * (natural C alignment gives the same offsets); tests/test_wasm_abi.py checks
 * the import names and arities of the built components against wit/.
 *
 * Memory: everything the host hands to the guest during a call (lists,
 * strings) and everything pl_alloc returns lives in a per-call arena that is
 * reset when the next init/process call starts. Keep state across frames in
 * static storage.
 */
#ifndef PIPELESS_H
#define PIPELESS_H

typedef unsigned char uint8_t;
typedef signed int int32_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef long long int64_t;
typedef unsigned long size_t;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

#define PL_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define PL_EXPORT(name) __attribute__((export_name(name)))

/* ---- types (pipeless:filter/types) ---- */
typedef struct { const char *ptr; size_t len; } pl_str;
typedef struct { int32_t x, y; } pl_point;
typedef struct { int32_t x, y, width, height; } pl_rect;
typedef struct { uint8_t r, g, b; } pl_color;
typedef struct { float x1, y1, x2, y2; } pl_box;
enum { PL_TRACE, PL_DEBUG, PL_INFO, PL_WARN, PL_ERROR };

/* ---- frame (pipeless:filter/frame) ---- */
typedef int32_t pl_frame; /* a borrow handle, valid during pl_process only */
typedef struct {
    uint32_t width, height, channels;
    pl_str stream_id;
    uint64_t index;
    double pts;
    bool has_model_input;
} pl_frame_info;
typedef struct { float scale_x, scale_y, pad_x, pad_y; } pl_input_transform;
enum { PL_SWAP_RB, PL_GRAYSCALE, PL_INVERT };
typedef struct { pl_rect rect; pl_color color; int32_t thickness; pl_str label; } pl_box_shape;
typedef struct { pl_point start, end; pl_color color; int32_t thickness; } pl_line_shape;
typedef struct { pl_point center; int32_t radius; pl_color color; int32_t thickness; } pl_circle_shape;
typedef struct { pl_point origin; pl_str text; pl_color color; float scale; int32_t thickness; } pl_text_shape;
typedef struct { const uint8_t *ptr; size_t len; } pl_bytes;

#define PL_FRAME "pipeless:filter/frame@0.1.0"
PL_IMPORT(PL_FRAME, "[method]frame.width") uint32_t pl_frame_width(pl_frame f);
PL_IMPORT(PL_FRAME, "[method]frame.height") uint32_t pl_frame_height(pl_frame f);
PL_IMPORT(PL_FRAME, "[method]frame.channels") uint32_t pl_frame_channels(pl_frame f);
PL_IMPORT(PL_FRAME, "[method]frame.stream-id") void pl_frame_stream_id(pl_frame f, pl_str *ret);
PL_IMPORT(PL_FRAME, "[method]frame.index") uint64_t pl_frame_index(pl_frame f);
PL_IMPORT(PL_FRAME, "[method]frame.pts") double pl_frame_pts(pl_frame f);
PL_IMPORT(PL_FRAME, "[method]frame.info") void pl_frame_info_get(pl_frame f, pl_frame_info *ret);
PL_IMPORT(PL_FRAME, "[method]frame.prepare-input")
void pl__prepare_input(pl_frame f, int32_t some, int32_t x, int32_t y, int32_t w, int32_t h, pl_input_transform *ret);
PL_IMPORT(PL_FRAME, "[method]frame.convert-color")
void pl__convert_color(pl_frame f, int32_t some, int32_t x, int32_t y, int32_t w, int32_t h, int32_t conversion);
PL_IMPORT(PL_FRAME, "[method]frame.blur") void pl_frame_blur(pl_frame f, const pl_rect *regions, size_t n, uint32_t kernel);
PL_IMPORT(PL_FRAME, "[method]frame.pixelate") void pl_frame_pixelate(pl_frame f, const pl_rect *regions, size_t n, uint32_t block);
PL_IMPORT(PL_FRAME, "[method]frame.fill")
void pl__fill(pl_frame f, const pl_rect *regions, size_t n, int32_t r, int32_t g, int32_t b);
PL_IMPORT(PL_FRAME, "[method]frame.copy-region")
void pl__copy_region(pl_frame f, int32_t sx, int32_t sy, int32_t sw, int32_t sh, int32_t dx, int32_t dy, int32_t dw, int32_t dh);
PL_IMPORT(PL_FRAME, "[method]frame.draw-boxes") void pl_frame_draw_boxes(pl_frame f, const pl_box_shape *boxes, size_t n);
PL_IMPORT(PL_FRAME, "[method]frame.draw-lines") void pl_frame_draw_lines(pl_frame f, const pl_line_shape *lines, size_t n);
PL_IMPORT(PL_FRAME, "[method]frame.draw-circles") void pl_frame_draw_circles(pl_frame f, const pl_circle_shape *c, size_t n);
PL_IMPORT(PL_FRAME, "[method]frame.draw-texts") void pl_frame_draw_texts(pl_frame f, const pl_text_shape *t, size_t n);
PL_IMPORT(PL_FRAME, "[method]frame.read-region")
void pl__read_region(pl_frame f, int32_t x, int32_t y, int32_t w, int32_t h, pl_bytes *ret);
PL_IMPORT(PL_FRAME, "[method]frame.write-region")
void pl__write_region(pl_frame f, int32_t x, int32_t y, int32_t w, int32_t h, const uint8_t *px, size_t n);
PL_IMPORT(PL_FRAME, "[resource-drop]frame") void pl__frame_drop(pl_frame f);

static inline pl_input_transform pl_frame_prepare_input(pl_frame f, const pl_rect *region) {
    pl_input_transform t;
    if (region) pl__prepare_input(f, 1, region->x, region->y, region->width, region->height, &t);
    else pl__prepare_input(f, 0, 0, 0, 0, 0, &t);
    return t;
}
static inline void pl_frame_convert_color(pl_frame f, const pl_rect *region, int32_t conversion) {
    if (region) pl__convert_color(f, 1, region->x, region->y, region->width, region->height, conversion);
    else pl__convert_color(f, 0, 0, 0, 0, 0, conversion);
}
static inline void pl_frame_fill(pl_frame f, const pl_rect *regions, size_t n, pl_color c) {
    pl__fill(f, regions, n, c.r, c.g, c.b);
}
static inline void pl_frame_copy_region(pl_frame f, pl_rect s, pl_rect d) {
    pl__copy_region(f, s.x, s.y, s.width, s.height, d.x, d.y, d.width, d.height);
}
static inline pl_bytes pl_frame_read_region(pl_frame f, pl_rect r) {
    pl_bytes b;
    pl__read_region(f, r.x, r.y, r.width, r.height, &b);
    return b;
}
static inline void pl_frame_write_region(pl_frame f, pl_rect r, const uint8_t *px, size_t n) {
    pl__write_region(f, r.x, r.y, r.width, r.height, px, n);
}

/* ---- detections (pipeless:filter/detections) ---- */
typedef struct { pl_str label; float score; pl_box box; } pl_detection;
typedef struct { pl_detection *ptr; size_t len; } pl_detections;
#define PL_DETECTIONS "pipeless:filter/detections@0.1.0"
PL_IMPORT(PL_DETECTIONS, "get-detections") void pl__get_detections(pl_frame f, pl_detections *ret);
PL_IMPORT(PL_DETECTIONS, "set-detections") void pl_set_detections(pl_frame f, const pl_detection *d, size_t n);
static inline pl_detections pl_get_detections(pl_frame f) {
    pl_detections d;
    pl__get_detections(f, &d);
    return d;
}

/* ---- output (pipeless:filter/output) ---- */
#define PL_OUTPUT "pipeless:filter/output@0.1.0"
PL_IMPORT(PL_OUTPUT, "emit") void pl__emit(const char *json, size_t len);
PL_IMPORT(PL_OUTPUT, "log") void pl__log(int32_t level, const char *msg, size_t len);

/* ---- runtime helpers (pipeless.c) ---- */
#define PL_OK 0
#define PL_FAILED 1
#define PL_FATAL 2
void *pl_alloc(size_t size, size_t align); /* per-call arena; never NULL (traps when memory is exhausted) */
size_t pl_strlen(const char *s);
static inline pl_str pl_cstr(const char *s) { pl_str r = {s, pl_strlen(s)}; return r; }
void pl_emit(pl_str json);
void pl_log(int32_t level, const char *msg);
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);

/* A tiny JSON writer into the arena (for pl_emit). */
typedef struct { char *buf; size_t len, cap; } pl_json;
void pl_json_init(pl_json *j, size_t cap);
void pl_json_raw(pl_json *j, const char *s);
void pl_json_str(pl_json *j, pl_str s);
void pl_json_int(pl_json *j, int64_t v);
void pl_json_num(pl_json *j, double v); /* 3 decimals */
static inline pl_str pl_json_done(pl_json *j) { pl_str s = {j->buf, j->len}; return s; }

/* Minimal JSON config lookup: the number after "key": in a flat object, or dflt. */
double pl_config_number(pl_str json, const char *key, double dflt);

/* Detection box -> integer rect, the ONE conversion every shipped filter
 * (and the native reference, pipeless.workers.wasm.ops.box_to_rect) uses:
 * each edge truncated toward zero after clamping to +-16777216 (NaN -> 0). */
static inline int32_t pl_f2i(float v) {
    if (!(v == v)) return 0;
    if (v > 16777216.0f) return 16777216;
    if (v < -16777216.0f) return -16777216;
    return (int32_t)v;
}
static inline pl_rect pl_box_rect(pl_box b) {
    int32_t x1 = pl_f2i(b.x1), y1 = pl_f2i(b.y1), x2 = pl_f2i(b.x2), y2 = pl_f2i(b.y2);
    pl_rect r = {x1, y1, x2 > x1 ? x2 - x1 : 0, y2 > y1 ? y2 - y1 : 0};
    return r;
}

/* Filters implement these. */
int pl_init(pl_str config_json, pl_str *error);
int pl_process(pl_frame frame, pl_str *error);

#endif
