/* tinyc HAL: what the emitted driver code asks of a chip (docs/accelerators.md, "Backend and runtime").
 *
 * Memories are numbered as in the target descriptor passed to tinyc_hal_init; a place in a core's
 * memory is (memory id, byte offset). L2 is plain pointers. Transfers and jobs are asynchronous: a
 * start returns at once, a wait blocks until every transfer (or that core's job) has finished.
 * tinyc_hal_emu.c implements this API on the host; a chip's own implementation replaces that file.
 */
#ifndef TINYC_HAL_H
#define TINYC_HAL_H

#include <stdint.h>

#include "tinyc_kernels.h"

typedef struct {
    const char *name;
    int32_t bytes;
} tinyc_hal_memory;

/* An accelerator: where its jobs read and write, and the numbers of its cost model. */
typedef struct {
    const char *name;
    int32_t activations, weights; /* memory ids: input/output boxes, and weights/bias */
    int32_t pe_rows, pe_cols;     /* PE array: output channels across the rows, output columns across the columns */
    int32_t job_setup_cycles;
    /* an analog array (0 on other cores): output channels and weight rows one job holds at most, the
     * inputs' signed bits, and the cycles of one evaluation and of writing one row of weights */
    int32_t max_channels, array_rows, input_bits, cycles_per_evaluation, write_cycles_per_row;
} tinyc_hal_core;

/* The chip as the emitted model declares it; cores are numbered by their index here. */
typedef struct {
    const char *host;
    int32_t num_memories;
    const tinyc_hal_memory *memories;
    int32_t num_cores;
    const tinyc_hal_core *cores;
    int32_t dma_setup_cycles, dma_bytes_per_cycle; /* a transfer of b bytes: setup + ceil(b / bytes per cycle) */
} tinyc_hal_target;

/* One DMA transfer: count[0] planes of count[1] rows of count[2] bytes. In L2 planes lie stride[0]
 * and rows stride[1] bytes apart; in the core memory the box is dense. */
typedef struct {
    int32_t count[3];
    int32_t stride[2];
} tinyc_hal_box;

enum { TINYC_JOB_CONV2D, TINYC_JOB_DEPTHWISE, TINYC_JOB_DENSE, TINYC_JOB_ADD, TINYC_JOB_ANALOG_CONV2D,
       TINYC_JOB_ANALOG_DENSE };

/* One job on one box, data channels first ([c][h][w], int8) in the core's memories:
 * conv2d/depthwise: acc = bias[co] + sum x * w over the window, with w[co][in_c or 1][kh][kw] and
 * the pads read as 0; dense: x[in_c], w[in_c][out_c]; without a bias acc starts at 0; all three then
 * out = clip((acc + (1 << (shift - 1))) >> shift, out_min, out_max) (no rounding term at shift 0).
 * add: out = the IR's qadd of input and input2 with `add`'s parameters.
 * analog conv2d/dense: as conv2d/dense with ternary weights held as 2-bit cells, four rows to a byte
 * ([co][ceil(rows / 4)], row r in bits 2 * (r % 4): 0, 1 or 3 = -1), rows = in_c * kernel (dense: in_c);
 * the accumulation (without bias) is read out by `adc` (tinyc_analog_out); the job first writes
 * `write_rows` rows of the weights into the array (its channel block's first box), else 0. */
typedef struct {
    int32_t kind;
    int32_t in_c, in_h, in_w;    /* the input box */
    int32_t out_c, out_h, out_w; /* the output box */
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right; /* the box's own padding */
    int32_t shift, out_min, out_max;
    /* byte offsets: input, input2 (add) and output in the activations memory, weights and bias
     * (int32 in the host's byte order, any alignment; -1: none) in the weights memory */
    int32_t input, input2, output, weights, bias;
    const tinyc_qadd_params *add; /* add only, else NULL */
    tinyc_adc adc;                /* analog only, else zeros */
    int32_t write_rows;
} tinyc_hal_job;

/* Begins a run of the model on the chip `t` (which must outlive the run); tinyc_hal_finish ends it. */
void tinyc_hal_init(const tinyc_hal_target *t);
void tinyc_hal_finish(void);

/* Layer markers: messages and per-layer counters name the layer. */
void tinyc_hal_layer_begin(int32_t index, const char *name);
void tinyc_hal_layer_end(void);

/* `tile` names the box a transfer or job belongs to, for messages. */
void tinyc_hal_dma_in(int32_t tile, int32_t memory, int32_t offset, const void *l2, const tinyc_hal_box *box);
void tinyc_hal_dma_out(int32_t tile, void *l2, int32_t memory, int32_t offset, const tinyc_hal_box *box);
void tinyc_hal_dma_wait(void);
void tinyc_hal_job_start(int32_t core, int32_t tile, const tinyc_hal_job *job);
void tinyc_hal_job_wait(int32_t core);

/* The L1 plan: a tensor the layer just wrote to [offset, offset + bytes) of `memory` stays there for
 * later layers (hold) until its last reader is done (release). Nothing may write over a held tensor. */
void tinyc_hal_l1_hold(int32_t memory, int32_t offset, int32_t bytes);
void tinyc_hal_l1_release(int32_t memory, int32_t offset, int32_t bytes);

/* The host spent `cycles` (modeled) computing a host layer. */
void tinyc_hal_host_work(uint64_t cycles);
/* The host's clock in cycles since tinyc_hal_init. */
uint64_t tinyc_hal_cycles(void);

#endif
