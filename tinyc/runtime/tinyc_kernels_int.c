/* Quantization boundary and int8 kernels: bit-exact with tinyc.ir.interpret (TFLite reference
 * arithmetic). Accumulators are int32 as in TFLite; everything after accumulation is int64. */
#include <string.h>

#include "tinyc_kernels.h"
#include "tinyc_window.h"

/* x's code among its channel's 256 words (tinyc/backends/c/kernels_quant.py): word 0 the sign bit to
 * flip into x, words 1..255 the keys at which the code steps up, less one. The key of x's bits is their
 * unsigned order as floats (negative ones' value bits inverted, then rotated so every NaN comes first);
 * the code is how many step keys lie below it, found in 8 halvings: a load, a branch and at most an add
 * each (fewer instructions, and on an in-order core no more cycles, than the branchless compare, shift
 * and add). */
static TINYC_INLINE int32_t quantize_index(float x, const uint32_t *steps, uint32_t flip)
{
    const uint32_t *p = steps;
    uint32_t bits, key;
    memcpy(&bits, &x, sizeof bits);
    bits ^= flip;
    key = (bits ^ ((0u - (bits >> 31)) >> 1)) - 0x7F800001u;
    if (key > p[128])
        p += 128;
    if (key > p[64])
        p += 64;
    if (key > p[32])
        p += 32;
    if (key > p[16])
        p += 16;
    if (key > p[8])
        p += 8;
    if (key > p[4])
        p += 4;
    if (key > p[2])
        p += 2;
    if (key > p[1])
        p += 1;
    return (int32_t)(p - steps);
}

/* One channel's run of n > 0 values: a loop of its own, so the table is one register. */
#define TINYC_QUANTIZE(NAME, T, LO)                                                                       \
    static TINYC_NOINLINE void NAME##_run(const float *x, T *y, int32_t n, const uint32_t *s)              \
    {                                                                                                       \
        const uint32_t flip = s[0];                                                                         \
        const float *end = x + n;                                                                           \
        do                                                                                                  \
            *y++ = (T)(LO + quantize_index(*x++, s, flip));                                                 \
        while (x != end);                                                                                   \
    }                                                                                                       \
    void NAME(const float *x, T *y, int32_t outer, int32_t channels, int32_t inner, const uint32_t *steps,   \
              int32_t step)                                                                                 \
    {                                                                                                       \
        int32_t o, c;                                                                                       \
        for (o = 0; o < outer && inner > 0; o++)                                                            \
            for (c = 0; c < channels; c++, x += inner, y += inner)                                          \
                NAME##_run(x, y, inner, steps + 256 * c * step);                                            \
    }

TINYC_QUANTIZE(tinyc_quantize_s8, int8_t, -128)
TINYC_QUANTIZE(tinyc_quantize_u8, uint8_t, 0)

/* table: per channel the 256 floats of the codes from the dtype's minimum up; t = the entry of code 0.
 * Four values a loop (a load, an index, a table load and a store each) after the odd ones. */
#define TINYC_DEQUANTIZE(NAME, T, LO)                                                                     \
    static TINYC_NOINLINE void NAME##_run(const T *x, float *y, int32_t n, const float *t)                 \
    {                                                                                                       \
        const T *end;                                                                                       \
        switch (n & 3) {                                                                                    \
        case 3: *y++ = t[*x++]; /* fallthrough */                                                           \
        case 2: *y++ = t[*x++]; /* fallthrough */                                                           \
        case 1: *y++ = t[*x++]; /* fallthrough */                                                           \
        default: break;                                                                                     \
        }                                                                                                   \
        end = x + (n & ~3);                                                                                 \
        if (x != end)                                                                                       \
            do {                                                                                            \
                const float a = t[x[0]], b = t[x[1]], c = t[x[2]], d = t[x[3]];                             \
                y[0] = a, y[1] = b, y[2] = c, y[3] = d;                                                     \
                x += 4, y += 4;                                                                             \
            } while (x != end);                                                                             \
    }                                                                                                       \
    void NAME(const T *x, float *y, int32_t outer, int32_t channels, int32_t inner, const float *table,     \
              int32_t step)                                                                                 \
    {                                                                                                       \
        int32_t o, c;                                                                                       \
        for (o = 0; o < outer; o++)                                                                         \
            for (c = 0; c < channels; c++, x += inner, y += inner)                                          \
                NAME##_run(x, y, inner, table + 256 * c * step - (LO));                                     \
    }

TINYC_DEQUANTIZE(tinyc_dequantize_s8, int8_t, -128)
TINYC_DEQUANTIZE(tinyc_dequantize_u8, uint8_t, 0)

void tinyc_dequantize_s32(const int32_t *x, float *y, int32_t outer, int32_t channels, int32_t inner,
                          const float *scale, const int32_t *zero_point, int32_t step)
{
    int32_t o, c, i;
    for (o = 0; o < outer; o++)
        for (c = 0; c < channels; c++) {
            const float s = scale[c * step];
            const int64_t zp = zero_point[c * step];
            for (i = 0; i < inner; i++)
                *y++ = (float)((int64_t)*x++ - zp) * s;
        }
}

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

/* narrow: (x - zp) << left_shift fits int32 with room for the sum of both (qadd_s8 checked), so each
 * rescale goes through requant_narrow where its shift allows, as in nearly every layer. */
static int8_t qadd_one(const tinyc_qadd_params *p, int32_t narrow, int32_t a, int32_t b)
{
    int64_t va, vb, out;
    if (!narrow || !tinyc_requant_narrow((a - p->a_zp) * (1 << p->left_shift), p->a_multiplier, p->a_shift,
                                   TINYC_ROUND_DOUBLE, &va))
        va = tinyc_multiply_by_quantized_multiplier(tinyc_shl((int64_t)a - p->a_zp, p->left_shift), p->a_multiplier,
                                                    p->a_shift);
    if (!narrow || !tinyc_requant_narrow((b - p->b_zp) * (1 << p->left_shift), p->b_multiplier, p->b_shift,
                                   TINYC_ROUND_DOUBLE, &vb))
        vb = tinyc_multiply_by_quantized_multiplier(tinyc_shl((int64_t)b - p->b_zp, p->left_shift), p->b_multiplier,
                                                    p->b_shift);
    if (va + vb != (int32_t)(va + vb) || !tinyc_requant_narrow((int32_t)(va + vb), p->out_multiplier, p->out_shift,
                                                         p->rounding, &out))
        out = p->rounding == TINYC_ROUND_SINGLE
                  ? tinyc_multiply_by_quantized_multiplier_single(va + vb, p->out_multiplier, p->out_shift)
                  : tinyc_multiply_by_quantized_multiplier(va + vb, p->out_multiplier, p->out_shift);
    return (int8_t)tinyc_clamp(out + p->out_zp, p->out_min, p->out_max);
}

/* Rows of the innermost dim in chunks: the two table entries of each pair summed, then requantized. */
void tinyc_qadd_plan_s8(const tinyc_bcast *b, const tinyc_qadd_plan *p, const int8_t *x0, const int8_t *x1, int8_t *y)
{
    const int32_t last = b->ndim - 1, len = b->shape[last];
    const int32_t sa = b->stride_a[last], sb = b->stride_b[last];
    const int32_t *ta = p->a + 128, *tb = p->b + 128;
    int32_t count = 1, idx[TINYC_MAX_DIMS] = {0}, off_a = 0, off_b = 0, t, i0, i, acc[TINYC_CHUNK];
    for (t = 0; t < last; t++)
        count *= b->shape[t];
    for (t = 0; t < count; t++, y += len) {
        for (i0 = 0; i0 < len; i0 += TINYC_CHUNK) {
            const int32_t n = tinyc_min(TINYC_CHUNK, len - i0);
            const int8_t *a = x0 + off_a + i0 * sa, *c = x1 + off_b + i0 * sb;
            for (i = 0; i < n; i++)
                acc[i] = ta[a[i * sa]] + tb[c[i * sb]];
            tinyc_rq32_run(&p->rq, 0, acc, n, y + i0, 1);
        }
        tinyc_bcast_step(b, last, idx, &off_a, &off_b);
    }
}

void tinyc_qadd_s8(const tinyc_bcast *b, const tinyc_qadd_params *p, const int8_t *x0, const int8_t *x1, int8_t *y)
{
    const int32_t last = b->ndim - 1, len = b->shape[last];
    const int32_t sa = b->stride_a[last], sb = b->stride_b[last];
    const int32_t narrow = p->left_shift <= 22
                           && (tinyc_zp_span(p->a_zp) > tinyc_zp_span(p->b_zp) ? tinyc_zp_span(p->a_zp) : tinyc_zp_span(p->b_zp)) << p->left_shift
                                  <= INT32_MAX / 2;
    int32_t count = 1, idx[TINYC_MAX_DIMS] = {0}, off_a = 0, off_b = 0, t, i;
    for (t = 0; t < last; t++)
        count *= b->shape[t];
    for (t = 0; t < count; t++, y += len) {
        for (i = 0; i < len; i++)
            y[i] = qadd_one(p, narrow, x0[off_a + i * sa], x1[off_b + i * sb]);
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

/* Each output is floor((2 num + den) / (2 den)) with num = table[d] * inv_out_scale and den = sum << 16
 * (the interpreter's round half up), all terms >= 0 (the emitter checks table and inv_out_scale). As
 * floor(floor(a / b) / c) = floor(a / (b c)) for a >= 0, that is floor(m / sum) with
 * m = (num + (sum << 15)) >> 16: one 32-bit division where m and sum fit in 32 bits, as they do for
 * every MLPerf Tiny softmax (tables of 2**20 and inv_out_scale 2**24 give m < 2**29), instead of a
 * 64-bit division call per element. */
void tinyc_qsoftmax_s8(const int8_t *x, int8_t *y, int32_t outer, int32_t axis, int32_t inner,
                       const int32_t *table, int64_t inv_out_scale, int32_t out_zp)
{
    int32_t o, a, i;
    for (o = 0; o < outer; o++)
        for (i = 0; i < inner; i++) {
            const int8_t *xs = x + o * axis * inner + i;
            int8_t *ys = y + o * axis * inner + i;
            int32_t top = xs[0];
            uint64_t sum = 0, half;
            for (a = 1; a < axis; a++)
                top = xs[a * inner] > top ? xs[a * inner] : top;
            for (a = 0; a < axis; a++)
                sum += (uint32_t)table[top - xs[a * inner]];
            half = sum << 15;
            for (a = 0; a < axis; a++) {
                const uint64_t e = (uint32_t)table[top - xs[a * inner]], m = (e * (uint64_t)inv_out_scale + half) >> 16;
                int64_t q = 0;
                if (sum != 0 && m >> 32 == 0 && sum >> 32 == 0)
                    q = (uint32_t)m / (uint32_t)sum;
                else if (sum != 0)
                    q = (int64_t)(m / sum);
                ys[a * inner] = (int8_t)tinyc_clamp(q + out_zp, -128, 127);
            }
        }
}
