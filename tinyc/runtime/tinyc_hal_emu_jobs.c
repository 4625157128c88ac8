/* The emulator's jobs (tinyc_hal_emu.c drives them): checks, arithmetic and cycles of one job, exactly
 * as docs/accelerators.md states them ("what a job computes", "Cost model"). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tinyc_hal_emu.h"

static void check_window(int32_t tile, const char *side, int32_t out, int32_t in, int32_t kernel, int32_t stride,
                         int32_t pad_begin, int32_t pad_end)
{
    if ((int64_t)(out - 1) * stride + kernel > (int64_t)pad_begin + in + pad_end)
        tinyc_emu_fail(tile, "job: %ld output %s need %lld input %s, the box has %ld plus pads %ld and %ld", (long)out, side,
             (long long)(out - 1) * stride + kernel, side, (long)in, (long)pad_begin, (long)pad_end);
}

static int32_t is_analog(const tinyc_hal_job *j)
{
    return j->kind == TINYC_JOB_ANALOG_CONV2D || j->kind == TINYC_JOB_ANALOG_DENSE;
}

/* Weights per output channel: the array rows an analog job uses. */
static int64_t rows_of(const tinyc_hal_job *j)
{
    return j->kind == TINYC_JOB_ANALOG_DENSE ? j->in_c : (int64_t)j->in_c * j->kernel_h * j->kernel_w;
}

/* An analog job fits the array (its columns, rows) and reads out through a sane ADC. */
static void check_analog(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job *j)
{
    const tinyc_adc *a = &j->adc;
    if (core->cycles_per_evaluation < 1)
        tinyc_emu_fail(tile, "analog job on core %s, which has no array", core->name);
    if (j->out_c > core->max_channels)
        tinyc_emu_fail(tile, "analog job has %ld output channels; the array has %ld columns", (long)j->out_c,
                       (long)core->max_channels);
    if (rows_of(j) > core->array_rows)
        tinyc_emu_fail(tile, "analog job needs %lld rows; the array has %ld", (long long)rows_of(j),
                       (long)core->array_rows);
    if (j->write_rows != 0 && j->write_rows != rows_of(j))
        tinyc_emu_fail(tile, "analog job writes %ld array rows, its weights have %lld", (long)j->write_rows,
                       (long long)rows_of(j));
    if (a->adc_shift < 0 || a->adc_shift > 31 || a->post_shift < 0 || a->post_shift > 31 || a->adc_min > a->adc_max)
        tinyc_emu_fail(tile, "analog job with an ADC shift, post shift or ADC range out of range");
}

void tinyc_emu_check_job(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job *j)
{
    const int32_t dense = j->kind == TINYC_JOB_DENSE || j->kind == TINYC_JOB_ANALOG_DENSE;
    const int32_t add = j->kind == TINYC_JOB_ADD;
    if (j->kind < TINYC_JOB_CONV2D || j->kind > TINYC_JOB_ANALOG_DENSE)
        tinyc_emu_fail(tile, "job of unknown kind %ld", (long)j->kind);
    if (j->in_c < 1 || j->in_h < 1 || j->in_w < 1 || j->out_c < 1 || j->out_h < 1 || j->out_w < 1)
        tinyc_emu_fail(tile, "job with an empty box");
    if (j->kernel_h < 1 || j->kernel_w < 1 || j->stride_h < 1 || j->stride_w < 1 || j->pad_top < 0 ||
        j->pad_left < 0 || j->pad_bottom < 0 || j->pad_right < 0)
        tinyc_emu_fail(tile, "job with a kernel, stride or pad out of range");
    if ((dense || add) && (j->kernel_h != 1 || j->kernel_w != 1 || j->stride_h != 1 || j->stride_w != 1 ||
                           j->pad_top || j->pad_left || j->pad_bottom || j->pad_right))
        tinyc_emu_fail(tile, "dense and add jobs take kernel 1, stride 1 and no pads");
    if (dense && (j->in_h != 1 || j->in_w != 1 || j->out_h != 1 || j->out_w != 1))
        tinyc_emu_fail(tile, "dense job with a spatial box");
    if ((j->kind == TINYC_JOB_DEPTHWISE || add) && j->in_c != j->out_c)
        tinyc_emu_fail(tile, "job has %ld input and %ld output channels; its kind needs them equal", (long)j->in_c,
             (long)j->out_c);
    if (add && !j->add)
        tinyc_emu_fail(tile, "add job without its parameters");
    if (!add && (j->shift < 0 || j->shift > 31 || j->out_min < -128 || j->out_min > j->out_max || j->out_max > 127))
        tinyc_emu_fail(tile, "job shift %ld or clip bounds [%ld, %ld] out of range", (long)j->shift, (long)j->out_min,
                       (long)j->out_max);
    if (is_analog(j))
        check_analog(tile, core, j);
    check_window(tile, "rows", j->out_h, j->in_h, j->kernel_h, j->stride_h, j->pad_top, j->pad_bottom);
    check_window(tile, "columns", j->out_w, j->in_w, j->kernel_w, j->stride_w, j->pad_left, j->pad_right);
}

int64_t tinyc_emu_weight_bytes(const tinyc_hal_job *j)
{
    const int64_t window = (int64_t)j->kernel_h * j->kernel_w;
    switch (j->kind) {
    case TINYC_JOB_CONV2D:
        return (int64_t)j->out_c * j->in_c * window;
    case TINYC_JOB_DEPTHWISE:
        return (int64_t)j->out_c * window;
    case TINYC_JOB_DENSE:
        return (int64_t)j->in_c * j->out_c;
    case TINYC_JOB_ANALOG_CONV2D:
    case TINYC_JOB_ANALOG_DENSE:
        return (int64_t)j->out_c * tinyc_emu_ceil_div(rows_of(j), 4); /* 2-bit cells, four to a byte */
    default:
        return 0;
    }
}

/* The cost model's compute cycles of one job (docs/accelerators.md, "Cost model"). */
uint64_t tinyc_emu_job_cycles(const tinyc_hal_core *core, const tinyc_hal_job *j)
{
    const int64_t channel_passes = tinyc_emu_ceil_div(j->out_c, core->pe_rows);
    const int64_t spatial = channel_passes * j->out_h * tinyc_emu_ceil_div(j->out_w, core->pe_cols);
    const int64_t window = (int64_t)j->kernel_h * j->kernel_w;
    int64_t cycles = spatial;
    if (j->kind == TINYC_JOB_CONV2D)
        cycles = spatial * j->in_c * window;
    else if (j->kind == TINYC_JOB_DEPTHWISE)
        cycles = spatial * window;
    else if (j->kind == TINYC_JOB_DENSE)
        cycles = channel_passes * tinyc_emu_ceil_div(j->in_c, core->pe_cols);
    else if (is_analog(j)) /* an evaluation per output pixel, after writing the block's rows */
        cycles = spatial * core->cycles_per_evaluation + (int64_t)j->write_rows * core->write_cycles_per_row;
    return (uint64_t)(cycles + core->job_setup_cycles);
}

static int32_t bias_of(const uint8_t *bias, int32_t channel)
{
    int32_t value = 0;
    if (bias)
        memcpy(&value, bias + 4 * (ptrdiff_t)channel, sizeof value);
    return value;
}

static int8_t shift_and_clip(const tinyc_hal_job *j, int64_t acc)
{
    const int64_t half = j->shift ? (int64_t)1 << (j->shift - 1) : 0;
    return (int8_t)tinyc_clamp(tinyc_asr(acc + half, j->shift), j->out_min, j->out_max);
}

/* conv2d and depthwise: each output reads its window of the box, the pads as zeros. */
static void run_window(const tinyc_hal_job *j, const int8_t *x, const int8_t *w, const uint8_t *bias, int8_t *y)
{
    const int32_t depthwise = j->kind == TINYC_JOB_DEPTHWISE, taps = j->kernel_h * j->kernel_w;
    const int32_t channels = depthwise ? 1 : j->in_c, plane = j->in_h * j->in_w;
    int32_t co, oy, ox, ci, ky, kx;
    for (co = 0; co < j->out_c; co++)
        for (oy = 0; oy < j->out_h; oy++)
            for (ox = 0; ox < j->out_w; ox++) {
                int64_t acc = bias_of(bias, co);
                for (ci = 0; ci < channels; ci++) {
                    const int8_t *xc = x + (ptrdiff_t)(depthwise ? co : ci) * plane;
                    const int8_t *wc = w + ((ptrdiff_t)co * channels + ci) * taps;
                    for (ky = 0; ky < j->kernel_h; ky++) {
                        const int32_t iy = oy * j->stride_h - j->pad_top + ky;
                        for (kx = 0; kx < j->kernel_w && iy >= 0 && iy < j->in_h; kx++) {
                            const int32_t ix = ox * j->stride_w - j->pad_left + kx;
                            if (ix >= 0 && ix < j->in_w)
                                acc += (int32_t)xc[iy * j->in_w + ix] * wc[ky * j->kernel_w + kx];
                        }
                    }
                }
                *y++ = shift_and_clip(j, acc);
            }
}

static void run_dense(const tinyc_hal_job *j, const int8_t *x, const int8_t *w, const uint8_t *bias, int8_t *y)
{
    int32_t co, ci;
    for (co = 0; co < j->out_c; co++) {
        int64_t acc = bias_of(bias, co);
        for (ci = 0; ci < j->in_c; ci++)
            acc += (int32_t)x[ci] * w[(ptrdiff_t)ci * j->out_c + co];
        y[co] = shift_and_clip(j, acc);
    }
}

static void run_add(const tinyc_hal_job *j, const int8_t *a, const int8_t *b, int8_t *y)
{
    tinyc_bcast flat;
    memset(&flat, 0, sizeof flat);
    flat.ndim = 1;
    flat.shape[0] = j->out_c * j->out_h * j->out_w;
    flat.stride_a[0] = flat.stride_b[0] = 1;
    tinyc_qadd_s8(&flat, j->add, a, b, y);
}

/* Unpacks the array's cells: int8 [co][rows] for a conv, [rows][co] (the IR's w[K][N]) for a dense. */
static int8_t *unpack_cells(int32_t tile, const tinyc_hal_job *j, const uint8_t *cells)
{
    const int64_t rows = rows_of(j), stride = tinyc_emu_ceil_div(rows, 4);
    const int32_t dense = j->kind == TINYC_JOB_ANALOG_DENSE;
    int8_t *w = (int8_t *)malloc((size_t)(rows * j->out_c) + 1);
    int64_t co, r;
    if (!w)
        tinyc_emu_fail(tile, "out of host memory for the array's weights");
    for (co = 0; co < j->out_c; co++)
        for (r = 0; r < rows; r++) {
            const int32_t cell = (cells[co * stride + r / 4] >> (2 * (r % 4))) & 3;
            if (cell == 2) {
                free(w);
                tinyc_emu_fail(tile, "array cell %lld of column %lld is 2, not ternary", (long long)r, (long long)co);
            }
            w[dense ? r * j->out_c + co : co * rows + r] = (int8_t)(cell == 3 ? -1 : cell);
        }
    return w;
}

/* The analog job through the host kernels of its IR ops (tinyc_aconv_s8, tinyc_amatmul_s8) on the box. */
static void run_analog(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job *j, const int8_t *x,
                       const uint8_t *cells, const uint8_t *bias_bytes, int8_t *y)
{
    const int64_t box = (int64_t)j->in_c * j->in_h * j->in_w;
    const int32_t lo = -(1 << (core->input_bits - 1)), hi = (1 << (core->input_bits - 1)) - 1;
    int32_t *bias = (int32_t *)malloc(sizeof(int32_t) * (size_t)j->out_c);
    int8_t *w;
    int64_t i;
    if (!bias)
        tinyc_emu_fail(tile, "out of host memory for the bias");
    for (i = 0; i < box; i++)
        if (x[i] < lo || x[i] > hi) {
            free(bias);
            tinyc_emu_fail(tile, "analog job input %ld at %lld is outside %ld bits", (long)x[i], (long long)i,
                           (long)core->input_bits);
        }
    for (i = 0; i < j->out_c; i++)
        bias[i] = bias_of(bias_bytes, (int32_t)i);
    w = unpack_cells(tile, j, cells);
    if (j->kind == TINYC_JOB_ANALOG_DENSE) {
        tinyc_amatmul_s8(x, w, bias, &j->adc, y, 1, j->in_c, j->out_c);
    } else {
        const tinyc_window g = {1, j->in_c, j->out_c, 1, {1, j->in_h, j->in_w}, {1, j->out_h, j->out_w},
                                {1, j->kernel_h, j->kernel_w}, {1, j->stride_h, j->stride_w}, {1, 1, 1},
                                {0, j->pad_top, j->pad_left}, {0, j->pad_bottom, j->pad_right}};
        tinyc_aconv_s8(&g, x, w, bias, &j->adc, y);
    }
    free(w);
    free(bias);
}

void tinyc_emu_compute(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job *j, uint8_t *activations,
                       const uint8_t *weights)
{
    const int8_t *x = (const int8_t *)activations + j->input;
    int8_t *y = (int8_t *)activations + j->output;
    const uint8_t *bias = j->bias < 0 ? NULL : weights + j->bias;
    if (is_analog(j))
        run_analog(tile, core, j, x, weights + j->weights, bias, y);
    else if (j->kind == TINYC_JOB_ADD)
        run_add(j, x, (const int8_t *)activations + j->input2, y);
    else if (j->kind == TINYC_JOB_DENSE)
        run_dense(j, x, (const int8_t *)weights + j->weights, bias, y);
    else
        run_window(j, x, (const int8_t *)weights + j->weights, bias, y);
}
