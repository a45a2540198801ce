/*
 * The canonical-ABI side of a C filter: exports, allocator, helpers.
 * Freestanding (no libc); see pipeless.h.
 */
#include "pipeless.h"

/* ---- memory functions (the compiler may emit calls to these) ----
 * Built with -mbulk-memory, so the builtins lower to memory.copy/fill
 * instructions rather than calling back into these functions. */
void *memcpy(void *dst, const void *src, size_t n) { return __builtin_memcpy(dst, src, n); }
void *memmove(void *dst, const void *src, size_t n) { return __builtin_memmove(dst, src, n); }
void *memset(void *dst, int c, size_t n) { return __builtin_memset(dst, c, n); }

size_t pl_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* ---- per-call arena ----
 * Everything the host lowers into the guest (arguments, returned lists and
 * strings) and everything pl_alloc hands out during a call is released at
 * once by the post-return of that call: no free(), no fragmentation, and a
 * high-water mark that is simply the largest frame's need. */
extern unsigned char __heap_base;
static size_t arena_start, arena_top, arena_end;

void *pl_alloc(size_t size, size_t align) {
    if (!arena_start) {
        arena_start = arena_top = (size_t)&__heap_base;
        arena_end = __builtin_wasm_memory_size(0) * 65536;
    }
    if (align == 0) align = 1;
    size_t p = (arena_top + align - 1) & ~(align - 1);
    if (size > 0x7fffffff || p + size < p) __builtin_trap();
    if (p + size > arena_end) {
        size_t pages = (p + size - arena_end + 65535) / 65536;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) __builtin_trap(); /* over the memory cap */
        arena_end += pages * 65536;
    }
    arena_top = p + size;
    return (void *)p;
}

static void arena_reset(void) { arena_top = arena_start; }

PL_EXPORT("cabi_realloc") void *pl__cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
    if (new_size == 0) return (void *)align;
    void *p = pl_alloc(new_size, align);
    if (old && old_size) memcpy(p, old, old_size < new_size ? old_size : new_size);
    return p;
}

/* ---- exports ---- */
static uint8_t ret_area[16] __attribute__((aligned(8)));

PL_EXPORT("init") uint8_t *pl__export_init(const char *ptr, size_t len) {
    pl_str cfg = {ptr, len};
    pl_str err = {"", 0};
    if (pl_init(cfg, &err) == 0) {
        ret_area[0] = 0;
    } else {
        ret_area[0] = 1;
        *(pl_str *)(ret_area + 4) = err;
    }
    return ret_area;
}

PL_EXPORT("cabi_post_init") void pl__post_init(uint8_t *ret) {
    (void)ret;
    arena_reset();
}

PL_EXPORT("process") uint8_t *pl__export_process(pl_frame frame) {
    pl_str err = {"", 0};
    int rc = pl_process(frame, &err);
#ifndef PL_KEEP_BORROW /* only the hostile test guest keeps it */
    pl__frame_drop(frame); /* a borrow must be returned before the call ends */
#endif
    if (rc == PL_OK) {
        ret_area[0] = 0;
    } else {
        ret_area[0] = 1;
        ret_area[4] = rc == PL_FATAL ? 1 : 0;
        *(pl_str *)(ret_area + 8) = err;
    }
    return ret_area;
}

PL_EXPORT("cabi_post_process") void pl__post_process(uint8_t *ret) {
    (void)ret;
    arena_reset();
}

/* ---- output ---- */
void pl_emit(pl_str json) { pl__emit(json.ptr, json.len); }
void pl_log(int32_t level, const char *msg) { pl__log(level, msg, pl_strlen(msg)); }

/* ---- JSON writer ---- */
void pl_json_init(pl_json *j, size_t cap) {
    j->buf = pl_alloc(cap, 1);
    j->len = 0;
    j->cap = cap;
}

static void json_put(pl_json *j, const char *s, size_t n) {
    if (j->len + n > j->cap) {
        size_t cap = (j->cap + n) * 2;
        char *nb = pl_alloc(cap, 1);
        memcpy(nb, j->buf, j->len);
        j->buf = nb;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

void pl_json_raw(pl_json *j, const char *s) { json_put(j, s, pl_strlen(s)); }

void pl_json_str(pl_json *j, pl_str s) {
    static const char hex[] = "0123456789abcdef";
    json_put(j, "\"", 1);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            json_put(j, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            json_put(j, e, 6);
        } else {
            json_put(j, (const char *)&s.ptr[i], 1);
        }
    }
    json_put(j, "\"", 1);
}

void pl_json_int(pl_json *j, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[n++] = '-';
    char out[24];
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    json_put(j, out, (size_t)n);
}

void pl_json_num(pl_json *j, double v) {
    if (!(v == v) || v > 9e15 || v < -9e15) {
        pl_json_raw(j, "null");
        return;
    }
    int64_t milli = (int64_t)(v * 1000.0 + (v < 0 ? -0.5 : 0.5));
    if (milli < 0) {
        json_put(j, "-", 1);
        milli = -milli;
    }
    pl_json_int(j, milli / 1000);
    char frac[4] = {'.', (char)('0' + (milli / 100) % 10), (char)('0' + (milli / 10) % 10), (char)('0' + milli % 10)};
    json_put(j, frac, 4);
}

/* ---- config lookup ---- */
double pl_config_number(pl_str json, const char *key, double dflt) {
    size_t kl = pl_strlen(key);
    for (size_t i = 0; i + kl + 2 <= json.len; i++) {
        if (json.ptr[i] != '"') continue;
        size_t k = 0;
        while (k < kl && json.ptr[i + 1 + k] == key[k]) k++;
        if (k != kl || json.ptr[i + 1 + kl] != '"') continue;
        size_t p = i + kl + 2;
        while (p < json.len && (json.ptr[p] == ' ' || json.ptr[p] == ':')) p++;
        double sign = 1, val = 0, scale = 1;
        bool any = false;
        if (p < json.len && json.ptr[p] == '-') { sign = -1; p++; }
        while (p < json.len && json.ptr[p] >= '0' && json.ptr[p] <= '9') { val = val * 10 + (json.ptr[p++] - '0'); any = true; }
        if (p < json.len && json.ptr[p] == '.') {
            p++;
            while (p < json.len && json.ptr[p] >= '0' && json.ptr[p] <= '9') { scale /= 10; val += (json.ptr[p++] - '0') * scale; any = true; }
        }
        return any ? sign * val : dflt;
    }
    return dflt;
}
