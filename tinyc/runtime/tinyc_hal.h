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
    int32_t job_setup_cycles;
    /* output channels and weights per output channel one job holds at most (0: no limit), and the
     * inputs' signed bits */
    int32_t max_channels, array_rows, input_bits;
} tinyc_hal_core;

/* What a job computes, how it requantizes, how its weights lie and what it costs: a job kind of the
 * target (tinyc/targets/jobs.py, whose tuples list these enums in order). The emulator runs every
 * kind with one engine per `computes`, read out by its `requantizer`. */
enum { TINYC_COMPUTE_CONV, TINYC_COMPUTE_DEPTHWISE, TINYC_COMPUTE_DENSE, TINYC_COMPUTE_ADD };
enum { TINYC_REQUANT_SHIFT, TINYC_REQUANT_MULTIPLIER, TINYC_REQUANT_ADC, TINYC_REQUANT_ADD };
enum { TINYC_REDUCE_ONE, TINYC_REDUCE_WINDOW, TINYC_REDUCE_TAPS, TINYC_REDUCE_CHANNELS };

typedef struct {
    const char *name;
    int32_t core; /* the core that runs it */
    int32_t computes, requantizer;
    int32_t per_channel;          /* multiplier: a multiplier and a shift per output channel */
    int32_t shift_min, shift_max; /* the right shifts it applies */
    int32_t zero_points;          /* takes the input's and output's zero points */
    int32_t weight_bits;          /* 8: int8 weights; 2: 2-bit cells, four to a byte */
    int32_t weights_by_input;     /* weights as w[rows][out_c], else w[out_c][rows] */
    /* compute cycles: ceil(out_c / channel_lanes) * ceil(out_h / row_lanes) * ceil(out_w / column_lanes)
     * * (per_pass + ceil(reduction / reduction_lanes) * per_step) + write_rows * write_cycles_per_row
     * + the core's job_setup_cycles, `reduction` one of TINYC_REDUCE_* */
    int32_t channel_lanes, row_lanes, column_lanes, reduction, reduction_lanes, per_step, per_pass;
    int32_t write_cycles_per_row;
} tinyc_hal_job_kind;

/* The chip as the emitted model declares it; cores are numbered by their index here. */
typedef struct {
    const char *host;
    int32_t num_memories;
    const tinyc_hal_memory *memories;
    int32_t num_cores;
    const tinyc_hal_core *cores;
    int32_t dma_setup_cycles, dma_bytes_per_cycle; /* a transfer of b bytes: setup + ceil(b / bytes per cycle) */
    int32_t num_job_kinds;
    const tinyc_hal_job_kind *job_kinds; /* a job's kind is its index here */
} tinyc_hal_target;

/* One DMA transfer: count[0] planes of count[1] rows of count[2] bytes. In L2 planes lie stride[0]
 * and rows stride[1] bytes apart; in the core memory the box is dense. */
typedef struct {
    int32_t count[3];
    int32_t stride[2];
} tinyc_hal_box;

/* One job on one box, data channels first ([c][h][w], int8) in the core's memories, as its kind says:
 * conv/depthwise: acc = sum (x - x_zp) * w over the window, the pads contributing nothing; dense:
 * sum (x[ci] - x_zp) * w[ci][co]; then, by the requantizer, with the bias of channel co (0 without one):
 *   shift:      out = clip(((acc + bias + (1 << (shift - 1))) >> shift) + out_zp) (no rounding term at 0)
 *   multiplier: out = clip(TFLite's fixed-point (acc + bias) * multiplier, shift with `rounding` + out_zp),
 *               multiplier and shift per channel from the channel words when the kind says so, else the job's
 *   adc:        out = tinyc_adc_out(acc, bias, &adc)
 * add: out = the IR's qadd of input and input2 with `add`'s parameters.
 * clip is to [out_min, out_max]. Weights are int8, or 2-bit cells four to a byte ([co][ceil(rows / 4)],
 * row r in bits 2 * (r % 4): 0, 1 or 3 = -1), rows = in_c * kernel (depthwise: the kernel, dense: in_c).
 * The channel words at `bias` are per output channel int32 {bias} or {bias, multiplier, shift}. A kind
 * with write_cycles_per_row first writes `write_rows` rows of weights (its channel block's first box). */
typedef struct {
    int32_t kind;
    int32_t in_c, in_h, in_w;    /* the input box */
    int32_t out_c, out_h, out_w; /* the output box */
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right; /* the box's own padding */
    int32_t shift, out_min, out_max;
    int32_t multiplier, rounding, x_zp, out_zp; /* rounding: TINYC_ROUND_DOUBLE or TINYC_ROUND_SINGLE */
    /* byte offsets: input, input2 (add) and output in the activations memory, weights and bias
     * (the channel words, int32 in the host's byte order, any alignment; -1: none) in the weights memory */
    int32_t input, input2, output, weights, bias;
    const tinyc_qadd_params *add; /* add only, else NULL */
    tinyc_adc adc;                /* an adc read-out only, else zeros */
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
