/* Hostile guest: executes `unreachable` on even frames. */
#include "pipeless.h"
int pl_init(pl_str cfg, pl_str *error) { (void)cfg; (void)error; return 0; }
int pl_process(pl_frame frame, pl_str *error) {
    (void)error;
    if (pl_frame_index(frame) % 2 == 1) return PL_OK;
    __builtin_trap();
}
