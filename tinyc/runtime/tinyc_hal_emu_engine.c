/* The emulator's job engine (tinyc_hal_emu.c drives it): the checks, arithmetic and cycles of one job,
 * generic over job kinds. A kind is data (tinyc_hal_job_kind, from tinyc/targets/jobs.py): one engine
 * per `computes`, one read-out per `requantizer`, weights as int8 or packed cells; nothing here knows a
 * kind by name, so a target declares a new kind without a line of C. */
#include <stddef.h>
#include <string.h>

#include "tinyc_hal_emu.h"

static void check_window(int32_t tile, const char *side, int32_t out, int32_t in, int32_t kernel, int32_t stride,
                         int32_t pad_begin, int32_t pad_end)
{
    if ((int64_t)(out - 1) * stride + kernel > (int64_t)pad_begin + in + pad_end)
        tinyc_emu_fail(tile, "job: %ld output %s need %lld input %s, the box has %ld plus pads %ld and %ld", (long)out, side,
             (long long)(out - 1) * stride + kernel, side, (long)in, (long)pad_begin, (long)pad_end);
}

/* Weights per output channel. */
static int64_t rows_of(const tinyc_hal_job_kind *k, const tinyc_hal_job *j)
{
    switch (k->computes) {
    case TINYC_COMPUTE_CONV:
        return (int64_t)j->in_c * j->kernel_h * j->kernel_w;
    case TINYC_COMPUTE_DEPTHWISE:
        return (int64_t)j->kernel_h * j->kernel_w;
    case TINYC_COMPUTE_DENSE:
        return j->in_c;
    default:
        return 0;
    }
}

/* int32 channel words per output channel at the job's bias: the bias, then a per-channel multiplier and shift. */
static int32_t channel_words(const tinyc_hal_job_kind *k)
{
    return 1 + 2 * (k->requantizer == TINYC_REQUANT_MULTIPLIER && k->per_channel);
}

static int32_t word_of(const uint8_t *words, int64_t index)
{
    int32_t value;
    memcpy(&value, words + 4 * (ptrdiff_t)index, sizeof value);
    return value;
}

static void check_shift(int32_t tile, const tinyc_hal_job_kind *k, int32_t right)
{
    if (right < k->shift_min || right > k->shift_max)
        tinyc_emu_fail(tile, "%s job shifts right by %ld; its kind takes %ld..%ld", k->name, (long)right,
                       (long)k->shift_min, (long)k->shift_max);
}

static void check_kind(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job_kind *k, const tinyc_hal_job *j)
{
    const tinyc_adc *a = &j->adc;
    if (core->max_channels && j->out_c > core->max_channels)
        tinyc_emu_fail(tile, "%s job has %ld output channels; core %s holds %ld", k->name, (long)j->out_c, core->name,
                       (long)core->max_channels);
    if (core->array_rows && rows_of(k, j) > core->array_rows)
        tinyc_emu_fail(tile, "%s job needs %lld weights per channel; core %s holds %ld", k->name,
                       (long long)rows_of(k, j), core->name, (long)core->array_rows);
    if (j->write_rows != 0 && (!k->write_cycles_per_row || j->write_rows != rows_of(k, j)))
        tinyc_emu_fail(tile, "%s job writes %ld rows of weights, its weights have %lld", k->name, (long)j->write_rows,
                       (long long)rows_of(k, j));
    if (!k->zero_points && (j->x_zp || j->out_zp))
        tinyc_emu_fail(tile, "%s job with zero points %ld and %ld; its kind takes none", k->name, (long)j->x_zp,
                       (long)j->out_zp);
    if (k->requantizer == TINYC_REQUANT_SHIFT)
        check_shift(tile, k, j->shift);
    if (k->requantizer == TINYC_REQUANT_MULTIPLIER && !k->per_channel)
        check_shift(tile, k, -j->shift);
    if (k->requantizer == TINYC_REQUANT_ADC && (a->adc_shift < 0 || a->adc_shift > 62 || a->post_shift < 0 ||
                                                a->post_shift > 62 || a->adc_min > a->adc_max))
        tinyc_emu_fail(tile, "%s job with an ADC shift, post shift or ADC range out of range", k->name);
}

void tinyc_emu_check_job(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job_kind *k, const tinyc_hal_job *j)
{
    const int32_t dense = k->computes == TINYC_COMPUTE_DENSE, add = k->computes == TINYC_COMPUTE_ADD;
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
    if ((k->computes == TINYC_COMPUTE_DEPTHWISE || add) && j->in_c != j->out_c)
        tinyc_emu_fail(tile, "job has %ld input and %ld output channels; its kind needs them equal", (long)j->in_c,
             (long)j->out_c);
    if (add && !j->add)
        tinyc_emu_fail(tile, "add job without its parameters");
    if (!add && (j->out_min < -128 || j->out_min > j->out_max || j->out_max > 127))
        tinyc_emu_fail(tile, "job clip bounds [%ld, %ld] out of range", (long)j->out_min, (long)j->out_max);
    check_kind(tile, core, k, j);
    check_window(tile, "rows", j->out_h, j->in_h, j->kernel_h, j->stride_h, j->pad_top, j->pad_bottom);
    check_window(tile, "columns", j->out_w, j->in_w, j->kernel_w, j->stride_w, j->pad_left, j->pad_right);
}

int64_t tinyc_emu_weight_bytes(const tinyc_hal_job_kind *k, const tinyc_hal_job *j)
{
    return (int64_t)j->out_c * tinyc_emu_ceil_div(rows_of(k, j) * k->weight_bits, 8);
}

int64_t tinyc_emu_channel_bytes(const tinyc_hal_job_kind *k, const tinyc_hal_job *j)
{
    return j->bias < 0 ? 0 : 4 * (int64_t)channel_words(k) * j->out_c;
}

/* The cost model's compute cycles of one job, by its kind's formula (tinyc/targets/jobs.py, Cycles). */
uint64_t tinyc_emu_job_cycles(const tinyc_hal_core *core, const tinyc_hal_job_kind *k, const tinyc_hal_job *j)
{
    const int64_t passes = tinyc_emu_ceil_div(j->out_c, k->channel_lanes) * tinyc_emu_ceil_div(j->out_h, k->row_lanes)
                           * tinyc_emu_ceil_div(j->out_w, k->column_lanes);
    const int64_t reduction = k->reduction == TINYC_REDUCE_WINDOW ? (int64_t)j->in_c * j->kernel_h * j->kernel_w
                              : k->reduction == TINYC_REDUCE_TAPS ? (int64_t)j->kernel_h * j->kernel_w
                              : k->reduction == TINYC_REDUCE_CHANNELS ? j->in_c : 1;
    const int64_t per_pass = k->per_pass + tinyc_emu_ceil_div(reduction, k->reduction_lanes) * k->per_step;
    return (uint64_t)(passes * per_pass + (int64_t)j->write_rows * k->write_cycles_per_row + core->job_setup_cycles);
}

/* Weight r of output channel co: int8, or a 2-bit cell (0, 1 or 3 = -1). */
static int32_t weight(int32_t tile, const tinyc_hal_job_kind *k, const tinyc_hal_job *j, const uint8_t *w, int64_t co,
                      int64_t r, int64_t rows)
{
    int32_t cell;
    if (k->weight_bits == 8)
        return (int8_t)w[k->weights_by_input ? r * j->out_c + co : co * rows + r];
    cell = (w[co * tinyc_emu_ceil_div(rows, 4) + r / 4] >> (2 * (r % 4))) & 3;
    if (cell == 2)
        tinyc_emu_fail(tile, "weight cell %lld of channel %lld is 2, not ternary", (long long)r, (long long)co);
    return cell == 3 ? -1 : cell;
}

/* The accumulation of output (co, oy, ox): the window of the box (dense: the input vector), pads as nothing. */
static int64_t accumulate(int32_t tile, const tinyc_hal_job_kind *k, const tinyc_hal_job *j, const int8_t *x,
                          const uint8_t *w, int32_t co, int32_t oy, int32_t ox)
{
    const int32_t depthwise = k->computes == TINYC_COMPUTE_DEPTHWISE, channels = depthwise ? 1 : j->in_c;
    const int64_t rows = rows_of(k, j), plane = (int64_t)j->in_h * j->in_w;
    int64_t acc = 0;
    int32_t ci, ky, kx;
    for (ci = 0; ci < channels; ci++) {
        const int8_t *xc = x + (depthwise ? co : ci) * plane;
        for (ky = 0; ky < j->kernel_h; ky++) {
            const int32_t iy = oy * j->stride_h - j->pad_top + ky;
            for (kx = 0; kx < j->kernel_w && iy >= 0 && iy < j->in_h; kx++) {
                const int32_t ix = ox * j->stride_w - j->pad_left + kx;
                const int64_t r = ((int64_t)ci * j->kernel_h + ky) * j->kernel_w + kx;
                if (ix >= 0 && ix < j->in_w)
                    acc += (int64_t)(xc[iy * j->in_w + ix] - j->x_zp) * weight(tile, k, j, w, co, r, rows);
            }
        }
    }
    return acc;
}

/* The accumulation of channel co read out to int8 by the kind's requantizer. */
static int8_t read_out(int32_t tile, const tinyc_hal_job_kind *k, const tinyc_hal_job *j, const uint8_t *words,
                       int32_t co, int64_t acc)
{
    const int64_t at = (int64_t)co * channel_words(k);
    const int64_t bias = words ? word_of(words, at) : 0;
    int32_t multiplier = j->multiplier, shift = j->shift;
    int64_t v;
    if (k->requantizer == TINYC_REQUANT_ADC)
        return tinyc_adc_out(acc, bias, &j->adc);
    if (k->requantizer == TINYC_REQUANT_SHIFT) {
        v = tinyc_asr(acc + bias + (j->shift ? (int64_t)1 << (j->shift - 1) : 0), j->shift);
    } else {
        if (k->per_channel) {
            multiplier = word_of(words, at + 1);
            shift = word_of(words, at + 2);
            check_shift(tile, k, -shift);
        }
        v = j->rounding == TINYC_ROUND_SINGLE ? tinyc_multiply_by_quantized_multiplier_single(acc + bias, multiplier, shift)
                                              : tinyc_multiply_by_quantized_multiplier(acc + bias, multiplier, shift);
    }
    return (int8_t)tinyc_clamp(v + j->out_zp, j->out_min, j->out_max);
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

static void check_input_bits(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job *j, const int8_t *x)
{
    const int32_t lo = -(1 << (core->input_bits - 1)), hi = (1 << (core->input_bits - 1)) - 1;
    const int64_t box = (int64_t)j->in_c * j->in_h * j->in_w;
    int64_t i;
    for (i = 0; core->input_bits < 8 && i < box; i++)
        if (x[i] < lo || x[i] > hi)
            tinyc_emu_fail(tile, "job input %ld at %lld is outside %ld bits", (long)x[i], (long long)i,
                           (long)core->input_bits);
}

void tinyc_emu_compute(int32_t tile, const tinyc_hal_core *core, const tinyc_hal_job_kind *k, const tinyc_hal_job *j,
                       uint8_t *activations, const uint8_t *weights)
{
    const int8_t *x = (const int8_t *)activations + j->input;
    int8_t *y = (int8_t *)activations + j->output;
    const uint8_t *words = j->bias < 0 ? NULL : weights + j->bias;
    int32_t co, oy, ox;
    check_input_bits(tile, core, j, x);
    if (k->computes == TINYC_COMPUTE_ADD) {
        run_add(j, x, (const int8_t *)activations + j->input2, y);
        return;
    }
    if (k->requantizer == TINYC_REQUANT_MULTIPLIER && k->per_channel && !words)
        tinyc_emu_fail(tile, "%s job without its channels' multipliers and shifts", k->name);
    for (co = 0; co < j->out_c; co++)
        for (oy = 0; oy < j->out_h; oy++)
            for (ox = 0; ox < j->out_w; ox++)
                y[((int64_t)co * j->out_h + oy) * j->out_w + ox] =
                    read_out(tile, k, j, words, co, accumulate(tile, k, j, x, weights + j->weights, co, oy, ox));
}
