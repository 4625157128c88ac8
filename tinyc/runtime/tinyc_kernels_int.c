/* Quantization boundary and int8 kernels: bit-exact with tinyc.ir.interpret (TFLite reference
 * arithmetic). Accumulators are int32 as in TFLite; everything after accumulation is int64. */
#include <math.h>
#include <string.h>

#include "tinyc_kernels.h"
#include "tinyc_window.h"

/* Clamps before converting: converting an out-of-range float (or NaN) to an integer is undefined. */
static int32_t quantize_one(float x, float scale, float zero_point, int32_t lo, int32_t hi)
{
    const float q = rintf(x / scale) + zero_point;
    return q >= (float)hi ? hi : q > (float)lo ? (int32_t)q : lo;
}

#define TINYC_QUANTIZE(NAME, T, LO, HI)                                                                 \
    void NAME(const float *x, T *y, int32_t outer, int32_t channels, int32_t inner, const float *scale,   \
              const int32_t *zero_point, int32_t step)                                                    \
    {                                                                                                     \
        int32_t o, c, i;                                                                                  \
        for (o = 0; o < outer; o++)                                                                       \
            for (c = 0; c < channels; c++) {                                                              \
                const float s = scale[c * step], zp = (float)zero_point[c * step];                        \
                for (i = 0; i < inner; i++)                                                               \
                    *y++ = (T)quantize_one(*x++, s, zp, LO, HI);                                          \
            }                                                                                             \
    }

TINYC_QUANTIZE(tinyc_quantize_s8, int8_t, -128, 127)
TINYC_QUANTIZE(tinyc_quantize_u8, uint8_t, 0, 255)

#define TINYC_DEQUANTIZE(NAME, T)                                                                         \
    void NAME(const T *x, float *y, int32_t outer, int32_t channels, int32_t inner, const float *scale,   \
              const int32_t *zero_point, int32_t step)                                                    \
    {                                                                                                     \
        int32_t o, c, i;                                                                                  \
        for (o = 0; o < outer; o++)                                                                       \
            for (c = 0; c < channels; c++) {                                                              \
                const float s = scale[c * step];                                                          \
                const int64_t zp = zero_point[c * step];                                                  \
                for (i = 0; i < inner; i++)                                                               \
                    *y++ = (float)((int64_t)*x++ - zp) * s;                                               \
            }                                                                                             \
    }

TINYC_DEQUANTIZE(tinyc_dequantize_s8, int8_t)
TINYC_DEQUANTIZE(tinyc_dequantize_u8, uint8_t)
TINYC_DEQUANTIZE(tinyc_dequantize_s32, int32_t)

void tinyc_flip_sign(const void *x, void *y, int32_t size)
{
    const uint8_t *p = (const uint8_t *)x;
    uint8_t *q = (uint8_t *)y;
    int32_t i;
    for (i = 0; i < size; i++)
        q[i] = (uint8_t)(p[i] ^ 0x80u);
}

void tinyc_relu_s8(const int8_t *x, int8_t *y, int32_t size)
{
    int32_t i;
    for (i = 0; i < size; i++)
        y[i] = x[i] < 0 ? 0 : x[i];
}

void tinyc_maxpool_s8(const tinyc_window *g, const int8_t *x, int8_t *y)
{
    TINYC_MAXPOOL_BODY(int8_t, -128)
}

void tinyc_maxpool_u8(const tinyc_window *g, const uint8_t *x, uint8_t *y)
{
    TINYC_MAXPOOL_BODY(uint8_t, 0)
}

/* acc plus bias, requantized to int8 (rq set) or wrapped to int32 like the reference's astype. */
static void store(const tinyc_requant *rq, void *y, int32_t index, int32_t channel, int64_t acc)
{
    if (rq) {
        const int32_t multiplier = rq->multiplier[channel * rq->step], shift = rq->shift[channel * rq->step];
        const int64_t v = rq->rounding == TINYC_ROUND_SINGLE
                              ? tinyc_multiply_by_quantized_multiplier_single(acc, multiplier, shift)
                              : tinyc_multiply_by_quantized_multiplier(acc, multiplier, shift);
        ((int8_t *)y)[index] = (int8_t)tinyc_clamp(v + rq->out_zp, rq->out_min, rq->out_max);
    } else {
        ((int32_t *)y)[index] = (int32_t)(uint32_t)(uint64_t)acc;
    }
}

/* The conv of tinyc_kernels_float.c with zero points: padding reads x_zp, i.e. contributes nothing. */
void tinyc_qconv_s8(const tinyc_window *g, const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp,
                    int32_t w_zp_step, const int32_t *bias, const tinyc_requant *rq, void *y)
{
    const int32_t cg = g->c / g->groups, mg = g->m / g->groups;
    const int32_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int32_t out_plane = g->out[0] * g->out[1] * g->out[2];
    const int32_t ksize = g->kernel[0] * g->kernel[1] * g->kernel[2];
    int32_t n, m, od, oh, ow0, c, kd, kh, kw, i;
    int32_t acc[TINYC_CHUNK];

    for (n = 0; n < g->n; n++)
        for (m = 0; m < g->m; m++) {
            const int8_t *xg = x + (n * g->c + m / mg * cg) * in_plane;
            const int8_t *wm = w + m * cg * ksize;
            const int32_t wzp = w_zp[m * w_zp_step], ybase = (n * g->m + m) * out_plane;
            for (od = 0; od < g->out[0]; od++)
                for (oh = 0; oh < g->out[1]; oh++)
                    for (ow0 = 0; ow0 < g->out[2]; ow0 += TINYC_CHUNK) {
                        const int32_t len = tinyc_min(TINYC_CHUNK, g->out[2] - ow0);
                        memset(acc, 0, sizeof acc);
                        for (c = 0; c < cg; c++)
                            for (kd = 0; kd < g->kernel[0]; kd++) {
                                const int32_t id = tinyc_window_pos(g, 0, od, kd);
                                if (!tinyc_in_input(g, 0, id))
                                    continue;
                                for (kh = 0; kh < g->kernel[1]; kh++) {
                                    const int32_t ih = tinyc_window_pos(g, 1, oh, kh);
                                    const int8_t *row, *wk;
                                    if (!tinyc_in_input(g, 1, ih))
                                        continue;
                                    row = xg + c * in_plane + (id * g->in[1] + ih) * g->in[2];
                                    wk = wm + ((c * g->kernel[0] + kd) * g->kernel[1] + kh) * g->kernel[2];
                                    for (kw = 0; kw < g->kernel[2]; kw++) {
                                        const int32_t wv = wk[kw] - wzp;
                                        const int32_t off = kw * g->dilation[2] - g->pad[2], s = g->stride[2];
                                        int32_t lo, hi;
                                        tinyc_row_range(g, off, ow0, len, &lo, &hi);
                                        for (i = lo; i < hi; i++)
                                            acc[i - ow0] += wv * (row[i * s + off] - x_zp);
                                    }
                                }
                            }
                        for (i = 0; i < len; i++)
                            store(rq, y, ybase + (od * g->out[1] + oh) * g->out[2] + ow0 + i, m,
                                  (int64_t)acc[i] + (bias ? bias[m] : 0));
                    }
        }
}

/* sum_k (x - x_zp) * (w - w_zp[j]) == sum_k (x - x_zp) * w - w_zp[j] * sum_k (x - x_zp): the inner loop
 * then reads w contiguously without a per-column subtraction. */
void tinyc_qmatmul_s8(const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp, int32_t w_zp_step,
                      const int32_t *bias, const tinyc_requant *rq, void *y, int32_t rows, int32_t k, int32_t n)
{
    int32_t r, j0, i, j;
    int32_t acc[TINYC_CHUNK];
    for (r = 0; r < rows; r++) {
        const int8_t *xr = x + r * k;
        int32_t xsum = 0;
        for (i = 0; i < k; i++)
            xsum += xr[i] - x_zp;
        for (j0 = 0; j0 < n; j0 += TINYC_CHUNK) {
            const int32_t len = tinyc_min(TINYC_CHUNK, n - j0);
            memset(acc, 0, sizeof acc);
            for (i = 0; i < k; i++) {
                const int32_t xv = xr[i] - x_zp;
                const int8_t *wr = w + i * n + j0;
                for (j = 0; j < len; j++)
                    acc[j] += xv * wr[j];
            }
            for (j = 0; j < len; j++) {
                const int32_t col = j0 + j;
                store(rq, y, r * n + col, col,
                      (int64_t)acc[j] - (int64_t)w_zp[col * w_zp_step] * xsum + (bias ? bias[col] : 0));
            }
        }
    }
}

static int8_t qadd_one(const tinyc_qadd_params *p, int32_t a, int32_t b)
{
    const int64_t sa = tinyc_shl((int64_t)a - p->a_zp, p->left_shift);
    const int64_t sb = tinyc_shl((int64_t)b - p->b_zp, p->left_shift);
    const int64_t total = tinyc_multiply_by_quantized_multiplier(sa, p->a_multiplier, p->a_shift)
                          + tinyc_multiply_by_quantized_multiplier(sb, p->b_multiplier, p->b_shift);
    const int64_t out = p->rounding == TINYC_ROUND_SINGLE
                            ? tinyc_multiply_by_quantized_multiplier_single(total, p->out_multiplier, p->out_shift)
                            : tinyc_multiply_by_quantized_multiplier(total, p->out_multiplier, p->out_shift);
    return (int8_t)tinyc_clamp(out + p->out_zp, p->out_min, p->out_max);
}

void tinyc_qadd_s8(const tinyc_bcast *b, const tinyc_qadd_params *p, const int8_t *x0, const int8_t *x1, int8_t *y)
{
    const int32_t last = b->ndim - 1, len = b->shape[last];
    const int32_t sa = b->stride_a[last], sb = b->stride_b[last];
    int32_t count = 1, idx[TINYC_MAX_DIMS] = {0}, off_a = 0, off_b = 0, t, i;
    for (t = 0; t < last; t++)
        count *= b->shape[t];
    for (t = 0; t < count; t++, y += len) {
        for (i = 0; i < len; i++)
            y[i] = qadd_one(p, x0[off_a + i * sa], x1[off_b + i * sb]);
        tinyc_bcast_step(b, last, idx, &off_a, &off_b);
    }
}

/* TFLite's rounded average: half away from zero, then C's truncating division. */
static int64_t rounded_average(int64_t total, int64_t count)
{
    if (count == 0)
        return 0; /* numpy's integer division by zero, for a window wholly in uncounted padding */
    return (total > 0 ? total + count / 2 : total - count / 2) / count;
}

void tinyc_qavgpool_s8(const tinyc_window *g, const int8_t *x, int8_t *y, int32_t count_include_pad, int32_t x_zp,
                       int32_t out_min, int32_t out_max)
{
    int32_t plane, od, oh, ow, kd, kh, kw;
    for (plane = 0; plane < g->n * g->c; plane++) {
        const int8_t *xp = x + plane * g->in[0] * g->in[1] * g->in[2];
        for (od = 0; od < g->out[0]; od++)
            for (oh = 0; oh < g->out[1]; oh++)
                for (ow = 0; ow < g->out[2]; ow++) {
                    int64_t total = 0;
                    int32_t inside = 0, padded = 0;
                    for (kd = 0; kd < g->kernel[0]; kd++) {
                        const int32_t id = tinyc_window_pos(g, 0, od, kd);
                        for (kh = 0; kh < g->kernel[1]; kh++) {
                            const int32_t ih = tinyc_window_pos(g, 1, oh, kh);
                            for (kw = 0; kw < g->kernel[2]; kw++) {
                                const int32_t iw = tinyc_window_pos(g, 2, ow, kw);
                                padded += tinyc_in_padding(g, 0, id) && tinyc_in_padding(g, 1, ih)
                                          && tinyc_in_padding(g, 2, iw);
                                if (tinyc_in_input(g, 0, id) && tinyc_in_input(g, 1, ih) && tinyc_in_input(g, 2, iw)) {
                                    total += xp[(id * g->in[1] + ih) * g->in[2] + iw];
                                    inside++;
                                }
                            }
                        }
                    }
                    if (count_include_pad)
                        total += (int64_t)x_zp * (padded - inside);
                    *y++ = (int8_t)tinyc_clamp(rounded_average(total, count_include_pad ? padded : inside),
                                               out_min, out_max);
                }
    }
}

void tinyc_lut_s8(const int8_t *x, int8_t *y, int32_t size, const int8_t *table)
{
    int32_t i;
    for (i = 0; i < size; i++)
        y[i] = table[x[i] + 128];
}

/* Floor division by a positive divisor, as numpy's // on the reference's int64 values. */
static int64_t floor_div(int64_t a, int64_t b)
{
    const int64_t q = a / b;
    return q * b != a && a < 0 ? q - 1 : q;
}

void tinyc_qsoftmax_s8(const int8_t *x, int8_t *y, int32_t outer, int32_t axis, int32_t inner,
                       const int32_t *table, int64_t inv_out_scale, int32_t out_zp)
{
    int32_t o, a, i;
    for (o = 0; o < outer; o++)
        for (i = 0; i < inner; i++) {
            const int8_t *xs = x + o * axis * inner + i;
            int8_t *ys = y + o * axis * inner + i;
            int32_t top = xs[0];
            int64_t sum = 0, den;
            for (a = 1; a < axis; a++)
                top = xs[a * inner] > top ? xs[a * inner] : top;
            for (a = 0; a < axis; a++)
                sum += table[top - xs[a * inner]];
            den = tinyc_shl(sum, 16);
            for (a = 0; a < axis; a++) {
                const int64_t num = (int64_t)table[top - xs[a * inner]] * inv_out_scale;
                const int64_t q = den == 0 ? 0 : floor_div(2 * num + den, 2 * den);
                ys[a * inner] = (int8_t)tinyc_clamp(q + out_zp, -128, 127);
            }
        }
}

/* The analog job's conv (groups 1) on the host: the accumulation starts at 0 (the array holds no bias),
 * padding contributes nothing, and each output is read out through the ADC (tinyc_analog_out). */
void tinyc_aconv_s8(const tinyc_window *g, const int8_t *x, const int8_t *w, const int32_t *bias,
                    const tinyc_adc *adc, int8_t *y)
{
    const int32_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int32_t ksize = g->kernel[0] * g->kernel[1] * g->kernel[2];
    int32_t n, m, od, oh, ow, c, kd, kh, kw;
    for (n = 0; n < g->n; n++)
        for (m = 0; m < g->m; m++)
            for (od = 0; od < g->out[0]; od++)
                for (oh = 0; oh < g->out[1]; oh++)
                    for (ow = 0; ow < g->out[2]; ow++) {
                        int64_t acc = 0;
                        for (c = 0; c < g->c; c++) {
                            const int8_t *xc = x + (n * g->c + c) * in_plane;
                            const int8_t *wc = w + (m * g->c + c) * ksize;
                            for (kd = 0; kd < g->kernel[0]; kd++) {
                                const int32_t id = tinyc_window_pos(g, 0, od, kd);
                                for (kh = 0; kh < g->kernel[1] && tinyc_in_input(g, 0, id); kh++) {
                                    const int32_t ih = tinyc_window_pos(g, 1, oh, kh);
                                    for (kw = 0; kw < g->kernel[2] && tinyc_in_input(g, 1, ih); kw++) {
                                        const int32_t iw = tinyc_window_pos(g, 2, ow, kw);
                                        if (tinyc_in_input(g, 2, iw))
                                            acc += xc[(id * g->in[1] + ih) * g->in[2] + iw]
                                                   * wc[(kd * g->kernel[1] + kh) * g->kernel[2] + kw];
                                    }
                                }
                            }
                        }
                        *y++ = tinyc_analog_out(acc, bias ? bias[m] : 0, adc);
                    }
}

void tinyc_amatmul_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const tinyc_adc *adc, int8_t *y,
                      int32_t rows, int32_t k, int32_t n)
{
    int32_t r, i, j;
    for (r = 0; r < rows; r++)
        for (j = 0; j < n; j++) {
            int64_t acc = 0;
            for (i = 0; i < k; i++)
                acc += x[r * k + i] * w[i * n + j];
            y[r * n + j] = tinyc_analog_out(acc, bias ? bias[j] : 0, adc);
        }
}
