/* Internals shared by the emulator's files (tinyc_hal_emu.c, tinyc_hal_emu_engine.c, tinyc_hal_emu_l1.c); not part of the HAL. */
#ifndef TINYC_HAL_EMU_H
#define TINYC_HAL_EMU_H

#include <stdint.h>

#include "tinyc_hal.h"

/* Prints `tinyc-emu: layer <name> tile <i>: <what>` to stderr and exits with status 3. */
void tinyc_emu_fail(int32_t tile, const char *format, ...);

static inline int64_t tinyc_emu_ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* The job engine (tinyc_hal_emu_engine.c), generic over job kinds. Fails unless the job's geometry, shifts,
 * zero points and clip bounds are ones its kind and core take. */
void tinyc_emu_check_job(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job_kind *k, const tinyc_hal_job *j);
int64_t tinyc_emu_weight_bytes(const tinyc_hal_job_kind *k, const tinyc_hal_job *j);
/* Bytes of the channel words (bias, and per-channel multiplier and shift) the job reads. */
int64_t tinyc_emu_channel_bytes(const tinyc_hal_job_kind *k, const tinyc_hal_job *j);
uint64_t tinyc_emu_job_cycles(const tinyc_hal_core *core, const tinyc_hal_job_kind *k, const tinyc_hal_job *j);
/* Runs a checked job on the core's memories (failing on inputs beyond the core's bits). */
void tinyc_emu_compute(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job_kind *k, const tinyc_hal_job *j,
                       uint8_t *activations, const uint8_t *weights);

/* The L1 plan's checks (tinyc_hal_emu_l1.c): forget every held tensor; fail when a write of [begin, end)
 * of `memory` lands on a held one. */
void tinyc_emu_l1_reset(const tinyc_hal_target *t);
void tinyc_emu_l1_check_write(int32_t tile, const char *what, int32_t memory, int64_t begin, int64_t end);
/* With $TINYC_TRACE, one line `<call> <layer index> <tile> <memory> <offset> <bytes>` (tile -1: none). */
void tinyc_emu_trace_call(const char *call, int32_t tile, int32_t memory, int64_t offset, int64_t bytes);

#endif
