/* Hostile guest: allocates 1 MiB blocks without end (the memory cap must stop it). */
#include "pipeless.h"
int pl_init(pl_str cfg, pl_str *error) { (void)cfg; (void)error; return 0; }
int pl_process(pl_frame frame, pl_str *error) {
    (void)error;
    if (pl_frame_index(frame) % 2 == 1) return PL_OK;
    for (;;) {
        uint8_t *p = pl_alloc(1 << 20, 16); /* traps when memory.grow is refused */
        p[0] = 1;
    }
}
