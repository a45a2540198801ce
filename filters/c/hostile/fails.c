/* Not hostile: reports its own failure (failed on frames % 3 == 1, fatal on % 3 == 2)
 * and counts calls since init, so tests can see whether the instance was rebuilt. */
#include "pipeless.h"
static int32_t calls;
int pl_init(pl_str cfg, pl_str *error) { (void)cfg; (void)error; calls = 0; return 0; }
int pl_process(pl_frame frame, pl_str *error) {
    calls++;
    pl_json j;
    pl_json_init(&j, 32);
    pl_json_raw(&j, "{\"calls\":");
    pl_json_int(&j, calls);
    pl_json_raw(&j, "}");
    pl_emit(pl_json_done(&j));
    uint64_t k = pl_frame_index(frame) % 3;
    if (k == 1) { *error = pl_cstr("this frame is not for me"); return PL_FAILED; }
    if (k == 2) { *error = pl_cstr("state corrupted"); return PL_FATAL; }
    return PL_OK;
}
