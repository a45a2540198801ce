/* Not hostile: a test guest that calls every frame operation once, so the
 * lean value readers/writers are checked end to end (tests/test_wasm_ops_guest.py). */
#include "pipeless.h"

int pl_init(pl_str cfg, pl_str *error) { (void)cfg; (void)error; return 0; }

int pl_process(pl_frame f, pl_str *error) {
    (void)error;
    pl_frame_info info;
    pl_frame_info_get(f, &info);
    pl_str sid;
    pl_frame_stream_id(f, &sid);
    /* invert a 4x2 patch at (0,0) through read/write-region */
    pl_rect patch = {0, 0, 4, 2};
    pl_bytes px = pl_frame_read_region(f, patch);
    uint8_t *inv = pl_alloc(px.len, 1);
    for (size_t i = 0; i < px.len; i++) inv[i] = (uint8_t)(255 - px.ptr[i]);
    pl_frame_write_region(f, patch, inv, px.len);
    pl_rect fills[2] = {{10, 10, 5, 5}, {200, 200, 5, 5}};
    pl_color red = {255, 0, 0};
    pl_frame_fill(f, fills, 2, red);
    pl_rect pix = {20, 20, 16, 16};
    pl_frame_pixelate(f, &pix, 1, 4);
    pl_rect gray = {40, 40, 8, 8};
    pl_frame_convert_color(f, &gray, PL_GRAYSCALE);
    pl_frame_copy_region(f, (pl_rect){0, 0, 8, 8}, (pl_rect){60, 60, 16, 16});
    pl_line_shape line = {{0, 100}, {50, 100}, {0, 0, 255}, 1};
    pl_frame_draw_lines(f, &line, 1);
    pl_circle_shape circ = {{120, 30}, 5, {0, 255, 0}, -1};
    pl_frame_draw_circles(f, &circ, 1);
    pl_text_shape text = {{100, 130}, pl_cstr("hi"), {255, 255, 255}, 0.5f, 1};
    pl_frame_draw_texts(f, &text, 1);
    /* detections: keep the first, relabelled */
    pl_detections d = pl_get_detections(f);
    if (d.len) {
        pl_detection one = d.ptr[0];
        one.label = pl_cstr("kept");
        one.score = 0.25f;
        pl_set_detections(f, &one, 1);
    }
    pl_log(PL_INFO, "exercised");
    pl_json j;
    pl_json_init(&j, 256);
    pl_json_raw(&j, "{\"w\":");
    pl_json_int(&j, info.width);
    pl_json_raw(&j, ",\"h\":");
    pl_json_int(&j, info.height);
    pl_json_raw(&j, ",\"c\":");
    pl_json_int(&j, pl_frame_channels(f));
    pl_json_raw(&j, ",\"index\":");
    pl_json_int(&j, (int64_t)info.index);
    pl_json_raw(&j, ",\"pts\":");
    pl_json_num(&j, info.pts);
    pl_json_raw(&j, ",\"stream\":");
    pl_json_str(&j, info.stream_id);
    pl_json_raw(&j, ",\"stream2\":");
    pl_json_str(&j, sid);
    pl_json_raw(&j, ",\"model\":");
    pl_json_raw(&j, info.has_model_input ? "true" : "false");
    pl_json_raw(&j, ",\"n\":");
    pl_json_int(&j, (int64_t)d.len);
    pl_json_raw(&j, "}");
    pl_emit(pl_json_done(&j));
    return PL_OK;
}
