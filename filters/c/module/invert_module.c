/* Per-pixel code through the opt-in whole-frame copy: invert every pixel. */
#include "pipeless_module.h"

extern unsigned char __heap_base;

PLM_EXPORT(pl_process) int32_t pl_process(void) {
    uint8_t *buf = &__heap_base;
    int32_t have = (int32_t)(__builtin_wasm_memory_size(0) * 65536 - (unsigned long)buf);
    int32_t need = plm_frame_copy_in(buf, 0); /* ask the size first */
    if (need > have) {
        if (__builtin_wasm_memory_grow(0, (unsigned long)(need - have + 65535) / 65536) == (unsigned long)-1) {
            plm_set_error("frame does not fit under the memory cap", 39);
            return 1;
        }
    }
    plm_frame_copy_in(buf, need);
    for (int32_t i = 0; i < need; i++) buf[i] = (uint8_t)(255 - buf[i]);
    plm_frame_copy_out(buf, need);
    return 0;
}
