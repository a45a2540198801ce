/* Hostile guest: never drops the frame borrow it is given on even frames. */
#define PL_KEEP_BORROW
#include "pipeless.c"
int pl_init(pl_str cfg, pl_str *error) { (void)cfg; (void)error; return 0; }
int pl_process(pl_frame frame, pl_str *error) {
    (void)error;
    if (pl_frame_index(frame) % 2 == 1) pl__frame_drop(frame); /* odd frames behave */
    return PL_OK;
}
