/* Hostile guest: never returns from process (the deadline must stop it). */
#include "pipeless.h"
int pl_init(pl_str cfg, pl_str *error) { (void)cfg; (void)error; return 0; }
int pl_process(pl_frame frame, pl_str *error) {
    (void)error;
    volatile uint32_t n = pl_frame_width(frame);
    if (pl_frame_index(frame) % 2 == 1) return PL_OK; /* odd frames are fine: the instance must recover */
    for (;;) n = n * 1664525u + 1013904223u;
    return (int)n;
}
