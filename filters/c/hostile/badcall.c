/* Hostile guest: asks the host for a region outside the frame on even frames. */
#include "pipeless.h"
int pl_init(pl_str cfg, pl_str *error) { (void)cfg; (void)error; return 0; }
int pl_process(pl_frame frame, pl_str *error) {
    (void)error;
    if (pl_frame_index(frame) % 2 == 1) return PL_OK;
    pl_rect r = {(int32_t)pl_frame_width(frame) - 4, 0, 16, 16}; /* 12 columns past the right edge */
    pl_bytes b = pl_frame_read_region(frame, r);
    return b.len == 0 ? PL_OK : PL_FAILED; /* not reached */
}
