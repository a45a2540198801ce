/* Not hostile: a bench guest making 1000 frame.width host calls per process,
 * so bench/wasm_draw.py can time one guest -> host crossing. */
#include "pipeless.h"
int pl_init(pl_str cfg, pl_str *error) { (void)cfg; (void)error; return 0; }
int pl_process(pl_frame frame, pl_str *error) {
    (void)error;
    uint32_t sum = 0;
    for (int i = 0; i < 1000; i++) sum += pl_frame_width(frame);
    return sum == 1000u * pl_frame_width(frame) ? PL_OK : PL_FAILED;
}
