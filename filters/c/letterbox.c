/*
 * letterbox (pre stage): prepare the model input from the whole frame with
 * the host's letterbox op, and emit the mapping it applied.
 */
#include "pipeless.h"

int pl_init(pl_str cfg, pl_str *error) {
    (void)cfg;
    (void)error;
    return 0;
}

int pl_process(pl_frame frame, pl_str *error) {
    pl_frame_info info;
    pl_frame_info_get(frame, &info);
    if (!info.has_model_input) {
        *error = pl_cstr("this frame has no model input (letterbox belongs in the pre stage of a pipeline with inference)");
        return PL_FAILED;
    }
    pl_input_transform t = pl_frame_prepare_input(frame, NULL);
    pl_json j;
    pl_json_init(&j, 128);
    pl_json_raw(&j, "{\"scale_x\":");
    pl_json_num(&j, t.scale_x);
    pl_json_raw(&j, ",\"scale_y\":");
    pl_json_num(&j, t.scale_y);
    pl_json_raw(&j, ",\"pad_x\":");
    pl_json_num(&j, t.pad_x);
    pl_json_raw(&j, ",\"pad_y\":");
    pl_json_num(&j, t.pad_y);
    pl_json_raw(&j, "}");
    pl_emit(pl_json_done(&j));
    return PL_OK;
}
