/*
 * face_tracker (stateful): follows detections across frames by IoU and emits
 * enter/leave events.
 *
 * Matching, identical in every language: detections in order, each takes the
 * live track with the highest IoU >= min_iou (ties: the older track); an
 * unmatched detection opens a new track (event "enter"); a track unseen for
 * more than max_missing frames closes (event "leave"). Arithmetic in double.
 * Output: {"frame":N,"events":[{"event":"enter","id":1},...],"tracks":[{"id":1,"box":[x1,y1,x2,y2]}]}
 * config: min_iou (0.3), max_missing (5), label (only this label; default all).
 * Each stream has its own tracks (frame indices count per stream); ids are unique across streams.
 */
#include "pipeless.h"

#define MAX_TRACKS 64

typedef struct {
    int32_t id;
    uint64_t stream; /* FNV-1a hash of the stream id */
    double x1, y1, x2, y2;
    uint64_t last_seen;
    bool live;
} track;

static track tracks[MAX_TRACKS];
static int32_t next_id = 1;
static double min_iou = 0.3;
static uint64_t max_missing = 5;
static char label_buf[64];
static size_t label_len = 0; /* 0: every label */

static pl_str config_string(pl_str json, const char *key, char *buf, size_t cap) {
    size_t kl = pl_strlen(key);
    pl_str none = {buf, 0};
    for (size_t i = 0; i + kl + 2 < json.len; i++) {
        if (json.ptr[i] != '"') continue;
        size_t k = 0;
        while (k < kl && json.ptr[i + 1 + k] == key[k]) k++;
        if (k != kl || json.ptr[i + 1 + kl] != '"') continue;
        size_t p = i + kl + 2;
        while (p < json.len && (json.ptr[p] == ' ' || json.ptr[p] == ':')) p++;
        if (p >= json.len || json.ptr[p] != '"') return none;
        p++;
        size_t n = 0;
        while (p < json.len && json.ptr[p] != '"' && n < cap) buf[n++] = json.ptr[p++];
        pl_str r = {buf, n};
        return r;
    }
    return none;
}

int pl_init(pl_str cfg, pl_str *error) {
    min_iou = pl_config_number(cfg, "min_iou", 0.3);
    double mm = pl_config_number(cfg, "max_missing", 5);
    if (min_iou <= 0 || min_iou > 1 || mm < 0) {
        *error = pl_cstr("min_iou must be in (0, 1], max_missing >= 0");
        return 1;
    }
    max_missing = (uint64_t)mm;
    label_len = config_string(cfg, "label", label_buf, sizeof label_buf).len;
    return 0;
}

static uint64_t fnv1a(pl_str s) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < s.len; i++) h = (h ^ (uint8_t)s.ptr[i]) * 1099511628211ULL;
    return h;
}

static double iou(const track *t, const pl_box *b) {
    double ix1 = t->x1 > b->x1 ? t->x1 : b->x1, iy1 = t->y1 > b->y1 ? t->y1 : b->y1;
    double ix2 = t->x2 < b->x2 ? t->x2 : b->x2, iy2 = t->y2 < b->y2 ? t->y2 : b->y2;
    double iw = ix2 - ix1, ih = iy2 - iy1;
    if (iw <= 0 || ih <= 0) return 0;
    double inter = iw * ih;
    double ua = (t->x2 - t->x1) * (t->y2 - t->y1) + ((double)b->x2 - b->x1) * ((double)b->y2 - b->y1) - inter;
    return ua > 0 ? inter / ua : 0;
}

static bool wanted(pl_str label) {
    if (!label_len) return true;
    if (label.len != label_len) return false;
    for (size_t i = 0; i < label_len; i++)
        if (label.ptr[i] != label_buf[i]) return false;
    return true;
}

static void event(pl_json *j, bool *first, const char *what, int32_t id) {
    if (!*first) pl_json_raw(j, ",");
    *first = false;
    pl_json_raw(j, "{\"event\":\"");
    pl_json_raw(j, what);
    pl_json_raw(j, "\",\"id\":");
    pl_json_int(j, id);
    pl_json_raw(j, "}");
}

int pl_process(pl_frame frame, pl_str *error) {
    uint64_t now = pl_frame_index(frame);
    pl_str sid;
    pl_frame_stream_id(frame, &sid);
    uint64_t stream = fnv1a(sid);
    pl_detections dets = pl_get_detections(frame);
    bool used[MAX_TRACKS] = {0};
    pl_json j;
    pl_json_init(&j, 512);
    pl_json_raw(&j, "{\"frame\":");
    pl_json_int(&j, (int64_t)now);
    pl_json_raw(&j, ",\"events\":[");
    bool first = true;

    for (size_t d = 0; d < dets.len; d++) {
        if (!wanted(dets.ptr[d].label)) continue;
        pl_box *b = &dets.ptr[d].box;
        int best = -1;
        double best_iou = 0;
        for (int t = 0; t < MAX_TRACKS; t++) {
            if (!tracks[t].live || used[t] || tracks[t].stream != stream) continue;
            double v = iou(&tracks[t], b);
            if (v >= min_iou && (best < 0 || v > best_iou || (v == best_iou && tracks[t].id < tracks[best].id))) {
                best = t;
                best_iou = v;
            }
        }
        if (best < 0) {
            for (int t = 0; t < MAX_TRACKS; t++) {
                if (!tracks[t].live) { best = t; break; }
            }
            if (best < 0) {
                *error = pl_cstr("more than 64 live tracks");
                return PL_FAILED;
            }
            tracks[best].live = true;
            tracks[best].stream = stream;
            tracks[best].id = next_id++;
            event(&j, &first, "enter", tracks[best].id);
        }
        used[best] = true;
        tracks[best].x1 = b->x1;
        tracks[best].y1 = b->y1;
        tracks[best].x2 = b->x2;
        tracks[best].y2 = b->y2;
        tracks[best].last_seen = now;
    }
    /* leave events in id order */
    for (int32_t last = 0;;) {
        int pick = -1;
        for (int t = 0; t < MAX_TRACKS; t++)
            if (tracks[t].live && tracks[t].stream == stream && !used[t] && now > tracks[t].last_seen + max_missing &&
                tracks[t].id > last &&
                (pick < 0 || tracks[t].id < tracks[pick].id))
                pick = t;
        if (pick < 0) break;
        last = tracks[pick].id;
        tracks[pick].live = false;
        event(&j, &first, "leave", tracks[pick].id);
    }
    pl_json_raw(&j, "],\"tracks\":[");
    first = true;
    /* live tracks by id, ascending */
    int32_t last = 0;
    for (;;) {
        int pick = -1;
        for (int t = 0; t < MAX_TRACKS; t++)
            if (tracks[t].live && tracks[t].stream == stream && tracks[t].id > last &&
                (pick < 0 || tracks[t].id < tracks[pick].id))
                pick = t;
        if (pick < 0) break;
        last = tracks[pick].id;
        if (!first) pl_json_raw(&j, ",");
        first = false;
        pl_json_raw(&j, "{\"id\":");
        pl_json_int(&j, tracks[pick].id);
        pl_json_raw(&j, ",\"box\":[");
        pl_json_num(&j, tracks[pick].x1);
        pl_json_raw(&j, ",");
        pl_json_num(&j, tracks[pick].y1);
        pl_json_raw(&j, ",");
        pl_json_num(&j, tracks[pick].x2);
        pl_json_raw(&j, ",");
        pl_json_num(&j, tracks[pick].y2);
        pl_json_raw(&j, "]}");
    }
    pl_json_raw(&j, "]}");
    pl_emit(pl_json_done(&j));
    return PL_OK;
}
