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

/* floor(x / 2**e), 0 <= e <= 31. */
static int32_t asr32(int32_t x, int32_t e)
{
    return x < 0 ? ~(~x >> e) : x >> e;
}

/* floor(x / 2**31) of a product plus a rounding term (|x| < 2**63) from its two words: the high word
 * shifted up once and the low word's top bit. */
static int32_t high_half(int64_t x)
{
    const uint64_t u = (uint64_t)x;
    return (int32_t)((uint32_t)(u >> 32) << 1 | (uint32_t)u >> 31);
}

/* The requantization of an int32 accumulator in 32-bit words where its shift allows (shift < 0 for
 * single rounding, -31 <= shift <= 0 for double), what nearly every layer has: the same values as
 * tinyc_multiply_by_quantized_multiplier(_single), without their int64 shifts. *v is the result. */
static int32_t requant_narrow(int32_t acc, int32_t multiplier, int32_t shift, int32_t rounding, int64_t *v)
{
    if (rounding == TINYC_ROUND_SINGLE) {
        const int32_t total = 31 - shift;
        int64_t half;
        if (total < 32 || total > 63)
            return 0;
        half = total > 32 ? (int64_t)((uint64_t)(1u << (total - 33)) << 32) : (int64_t)1 << 31;
        /* floor((acc * multiplier + half) / 2**total): the high word of the sum, shifted on */
        *v = asr32((int32_t)(uint32_t)((uint64_t)((int64_t)acc * multiplier + half) >> 32), total - 32);
    } else {
        int64_t ab;
        int32_t high, mask;
        if (shift > 0 || shift < -31 || (acc == INT32_MIN && multiplier == INT32_MIN))
            return 0;
        ab = (int64_t)acc * multiplier;
        /* the rounding doubling high mul: C's truncating division by 2**31 of ab plus the nudge */
        high = ab >= 0 ? high_half(ab + (1 << 30)) : -high_half(-(ab + 1 - (1 << 30)));
        mask = (int32_t)((1u << -shift) - 1);
        *v = asr32(high, -shift) + ((high & mask) > (mask >> 1) + (high < 0));
    }
    return 1;
}

/* acc plus bias, requantized to int8 (rq set) or wrapped to int32 like the reference's astype. */
static void store(const tinyc_requant *rq, void *y, int32_t index, int32_t channel, int64_t acc)
{
    if (rq) {
        const int32_t multiplier = rq->multiplier[channel * rq->step], shift = rq->shift[channel * rq->step];
        int64_t v;
        if (acc != (int32_t)acc || !requant_narrow((int32_t)acc, multiplier, shift, rq->rounding, &v))
            v = rq->rounding == TINYC_ROUND_SINGLE ? tinyc_multiply_by_quantized_multiplier_single(acc, multiplier, shift)
                                                   : tinyc_multiply_by_quantized_multiplier(acc, multiplier, shift);
        ((int8_t *)y)[index] = (int8_t)tinyc_clamp(v + rq->out_zp, rq->out_min, rq->out_max);
    } else {
        ((int32_t *)y)[index] = (int32_t)(uint32_t)(uint64_t)acc;
    }
}

/* max |v - zp| over int8 v: with it, taps * span(x_zp) * span(w_zp) bounds every accumulator. */
static int64_t span(int32_t zp)
{
    return zp < 0 ? 127 - (int64_t)zp : 128 + (int64_t)zp;
}

/* The largest span of per-channel (step 1) or per-tensor (step 0) zero points. */
static int64_t max_span(const int32_t *zp, int32_t step, int32_t channels)
{
    int64_t most = span(zp[0]);
    int32_t i;
    for (i = 1; i < channels * step; i++)
        most = span(zp[i]) > most ? span(zp[i]) : most;
    return most;
}

/* One loop over taps: its count and its steps in x and in w. */
typedef struct {
    int32_t n, x, w;
} conv_loop;

/* The taps of one output row (od, oh) for a pair of output channels (w0 and w1; the same weights for an
 * odd last channel): three outer loops, each over an inner run. The depth and height loops cover the
 * row's valid taps; the inner run is the longer of the width taps and the group's channels, so that the
 * per-run overhead (dot_2x4's call) is paid for as many taps as possible. */
typedef struct {
    const int8_t *x, *w0, *w1; /* the window's first valid tap at input column 0; the pair's weights there */
    int32_t x_zp, wz0, wz1, s; /* s: the x step between outputs */
    conv_loop outer[3], inner;
} conv_taps;

/* acc[i] += sum_k (w0[k] - wz0) * p[k * inner.x + i * s] for the four outputs i, acc[4 + i] likewise with
 * w1: each x load feeds two channels and each weight four outputs. Its own function over one inner run,
 * so that the eight sums stay in registers (RV32 has too few for them and the outer loops' pointers). */
TINYC_NOINLINE static void dot_2x4(const conv_taps *t, const int8_t *p, const int8_t *w0, const int8_t *w1, int32_t *acc)
{
    const int32_t s = t->s, k_x = t->inner.x, k_w = t->inner.w, wz0 = t->wz0, wz1 = t->wz1;
    const int8_t *end = w0 + t->inner.n * k_w;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7];
    for (; w0 != end; w0 += k_w, w1 += k_w, p += k_x) {
        const int32_t u = *w0 - wz0, v = *w1 - wz1;
        const int32_t x0 = p[0], x1 = p[s], x2 = p[2 * s], x3 = p[3 * s];
        a0 += u * x0;
        a1 += u * x1;
        a2 += u * x2;
        a3 += u * x3;
        b0 += v * x0;
        b1 += v * x1;
        b2 += v * x2;
        b3 += v * x3;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = b0;
    acc[5] = b1;
    acc[6] = b2;
    acc[7] = b3;
}

/* Four outputs per channel whose windows start at x + iw and lie inside the input. The products take x
 * unshifted: x_zp comes off after, as x_zp times the weight sums wsum (sum of w - wz over the taps). */
static void conv_block4(const conv_taps *t, int32_t iw, const int32_t *wsum, int32_t *acc)
{
    const conv_loop *o = t->outer;
    const int32_t dw = (int32_t)(t->w1 - t->w0);
    int32_t a, b, c, i;
    const int8_t *xa = t->x + iw, *wa = t->w0;
    memset(acc, 0, 8 * sizeof *acc);
    for (a = 0; a < o[0].n; a++, xa += o[0].x, wa += o[0].w) {
        const int8_t *xb = xa, *wb = wa;
        for (b = 0; b < o[1].n; b++, xb += o[1].x, wb += o[1].w) {
            const int8_t *xc = xb, *wc = wb;
            for (c = 0; c < o[2].n; c++, xc += o[2].x, wc += o[2].w)
                dot_2x4(t, xc, wc, wc + dw, acc);
        }
    }
    for (i = 0; i < 8; i++)
        acc[i] -= t->x_zp * wsum[i / 4];
}

/* One output per channel at x + iw over the taps of t (whose width loop the caller clipped to the
 * input), into acc[3] and acc[7]: where conv_block4 leaves its last output of each channel. With x
 * NULL, the sums of w - wz alone (for the x_zp term of conv_block4) into acc[0] and acc[1]. */
TINYC_NOINLINE static void conv_one(const conv_taps *t, const int8_t *x, int32_t *acc)
{
    const conv_loop *o = t->outer;
    const int32_t dw = (int32_t)(t->w1 - t->w0), k_x = t->inner.x, k_w = t->inner.w, x_zp = t->x_zp;
    const int32_t wz0 = t->wz0, wz1 = t->wz1;
    int32_t a = 0, b = 0, ia, ib, ic;
    const int8_t *xa = x ? x : t->x, *wa = t->w0;
    for (ia = 0; ia < o[0].n; ia++, xa += o[0].x, wa += o[0].w) {
        const int8_t *xb = xa, *wb = wa;
        for (ib = 0; ib < o[1].n; ib++, xb += o[1].x, wb += o[1].w) {
            const int8_t *xc = xb, *wc = wb;
            for (ic = 0; ic < o[2].n; ic++, xc += o[2].x, wc += o[2].w) {
                const int8_t *p = xc, *wu = wc, *end = wc + t->inner.n * k_w;
                for (; wu != end; wu += k_w, p += k_x) {
                    const int32_t xv = x ? *p - x_zp : 1;
                    a += xv * (*wu - wz0);
                    b += xv * (wu[dw] - wz1);
                }
            }
        }
    }
    acc[x ? 3 : 0] = a;
    acc[x ? 7 : 1] = b;
}

/* The conv with int32 accumulators, for when taps * span(x_zp) * span(w_zp) fits them. Walks channel
 * pairs and output rows; along a row, runs of four outputs whose windows lie inside the input take
 * conv_block4, the rest (borders, leftovers) conv_one. A pointwise conv comes flattened to one row. */
static void qconv_narrow(const tinyc_window *g, const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp,
                         int32_t w_zp_step, const int32_t *bias, const tinyc_requant *rq, void *y)
{
    const int32_t cg = g->c / g->groups, mg = g->m / g->groups, kw = g->kernel[2], dil = g->dilation[2];
    const int32_t in_plane = g->in[0] * g->in[1] * g->in[2], out_plane = g->out[0] * g->out[1] * g->out[2];
    const int32_t ksize = g->kernel[0] * g->kernel[1] * kw, s = g->stride[2], pad = g->pad[2];
    const int32_t reach = (kw - 1) * dil;  /* from a window's first column to its last */
    const int32_t channels_inner = cg > kw; /* else the width taps are the inner run */
    const conv_loop channel = {cg, in_plane, ksize}, width = {kw, dil, 1};
    const conv_loop depth = {0, g->dilation[0] * g->in[1] * g->in[2], g->kernel[1] * kw};
    const conv_loop height = {0, g->dilation[1] * g->in[2], kw};
    conv_loop *ld, *lh, *lw; /* where the depth and height loops (counts per row) and the width loop sit */
    int32_t n, m, pair, od, oh, ow, i, nd = 0, nh = 0;
    const int8_t *summed = NULL; /* the taps wsum holds: its first weight, nd and nh */
    int32_t acc[8], wsum[2] = {0, 0};
    conv_taps t;
    t.x_zp = x_zp;
    t.s = s;
    t.outer[0] = channels_inner ? depth : channel;
    t.outer[1] = channels_inner ? height : depth;
    t.outer[2] = channels_inner ? width : height;
    t.inner = channels_inner ? channel : width;
    ld = channels_inner ? &t.outer[0] : &t.outer[1];
    lh = channels_inner ? &t.outer[1] : &t.outer[2];
    lw = channels_inner ? &t.outer[2] : &t.inner;
    for (n = 0; n < g->n; n++)
        for (m = 0; m < g->m; m += 1 + pair) { /* an odd last channel of a group goes alone */
            const int8_t *xg = x + (n * g->c + m / mg * cg) * in_plane;
            const int8_t *w0 = w + m * cg * ksize;
            const int32_t ybase = (n * g->m + m) * out_plane;
            pair = m % mg + 1 < mg;
            t.wz0 = w_zp[m * w_zp_step];
            t.wz1 = w_zp[(m + pair) * w_zp_step];
            for (od = 0; od < g->out[0]; od++)
                for (oh = 0; oh < g->out[1]; oh++) {
                    const int32_t id = od * g->stride[0] - g->pad[0], ih = oh * g->stride[1] - g->pad[1];
                    int32_t at = ybase + (od * g->out[1] + oh) * g->out[2], kd0, kd1, kh0, kh1;
                    tinyc_tap_range(id, g->in[0], g->kernel[0], g->dilation[0], &kd0, &kd1);
                    tinyc_tap_range(ih, g->in[1], g->kernel[1], g->dilation[1], &kh0, &kh1);
                    ld->n = kd1 - kd0;
                    lh->n = kh1 - kh0;
                    t.x = xg + (id + kd0 * g->dilation[0]) * g->in[1] * g->in[2] + (ih + kh0 * g->dilation[1]) * g->in[2];
                    t.w0 = w0 + (kd0 * g->kernel[1] + kh0) * kw;
                    t.w1 = pair ? t.w0 + cg * ksize : t.w0;
                    if (x_zp && (t.w0 != summed || ld->n != nd || lh->n != nh)) {
                        conv_one(&t, NULL, wsum);
                        summed = t.w0;
                        nd = ld->n;
                        nh = lh->n;
                    }
                    for (ow = 0; ow < g->out[2];) {
                        const int32_t iw = ow * s - pad;
                        int32_t count = 1, k0, k1;
                        if (ow + 4 <= g->out[2] && iw >= 0 && iw + 3 * s + reach < g->in[2]) {
                            count = 4;
                            conv_block4(&t, iw, wsum, acc);
                        } else {
                            tinyc_tap_range(iw, g->in[2], kw, dil, &k0, &k1);
                            lw->n = k1 - k0; /* the width taps inside the input, then back to all */
                            t.w0 += k0;
                            t.w1 += k0;
                            conv_one(&t, t.x + iw + k0 * dil, acc);
                            lw->n = kw;
                            t.w0 -= k0;
                            t.w1 -= k0;
                        }
                        for (i = 4 - count; i < 4; i++, at++) {
                            store(rq, y, at, m, (int64_t)acc[i] + (bias ? bias[m] : 0));
                            if (pair)
                                store(rq, y, at + out_plane, m + 1, (int64_t)acc[i + 4] + (bias ? bias[m + 1] : 0));
                        }
                        ow += count;
                    }
                }
        }
}

/* The reference's exact sums in int64, for reductions too long for int32 (never in MLPerf Tiny). */
static void qconv_wide(const tinyc_window *g, const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp,
                       int32_t w_zp_step, const int32_t *bias, const tinyc_requant *rq, void *y)
{
    const int32_t cg = g->c / g->groups, mg = g->m / g->groups;
    const int32_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int32_t ksize = g->kernel[0] * g->kernel[1] * g->kernel[2];
    int32_t n, m, od, oh, ow, c, kd, kh, kw, at = 0;
    for (n = 0; n < g->n; n++)
        for (m = 0; m < g->m; m++)
            for (od = 0; od < g->out[0]; od++)
                for (oh = 0; oh < g->out[1]; oh++)
                    for (ow = 0; ow < g->out[2]; ow++) {
                        int64_t acc = bias ? bias[m] : 0;
                        for (c = 0; c < cg; c++) {
                            const int8_t *xc = x + (n * g->c + m / mg * cg + c) * in_plane;
                            const int8_t *wc = w + (m * cg + c) * ksize;
                            for (kd = 0; kd < g->kernel[0]; kd++) {
                                const int32_t id = tinyc_window_pos(g, 0, od, kd);
                                for (kh = 0; kh < g->kernel[1] && tinyc_in_input(g, 0, id); kh++) {
                                    const int32_t ih = tinyc_window_pos(g, 1, oh, kh);
                                    for (kw = 0; kw < g->kernel[2] && tinyc_in_input(g, 1, ih); kw++) {
                                        const int32_t iw = tinyc_window_pos(g, 2, ow, kw);
                                        if (tinyc_in_input(g, 2, iw))
                                            acc += ((int64_t)xc[(id * g->in[1] + ih) * g->in[2] + iw] - x_zp)
                                                   * ((int64_t)wc[(kd * g->kernel[1] + kh) * g->kernel[2] + kw]
                                                      - w_zp[m * w_zp_step]);
                                    }
                                }
                            }
                        }
                        store(rq, y, at++, m, acc);
                    }
}

/* Padding reads x_zp, i.e. contributes nothing. A 1x1 conv of stride 1 without padding is one long row:
 * its plane goes through the row loop whole, so blocks of four never stop at a row's end. */
void tinyc_qconv_s8(const tinyc_window *g, const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp,
                    int32_t w_zp_step, const int32_t *bias, const tinyc_requant *rq, void *y)
{
    const int64_t taps = (int64_t)g->c / g->groups * g->kernel[0] * g->kernel[1] * g->kernel[2];
    tinyc_window flat = *g;
    int32_t d, pointwise = 1;
    for (d = 0; d < 3; d++)
        pointwise &= g->kernel[d] == 1 && g->stride[d] == 1 && g->pad[d] == 0 && g->pad_end[d] == 0;
    if (pointwise) {
        flat.in[2] = flat.out[2] = g->in[0] * g->in[1] * g->in[2];
        flat.in[0] = flat.in[1] = flat.out[0] = flat.out[1] = 1;
    }
    if (taps * span(x_zp) * max_span(w_zp, w_zp_step, g->m) <= INT32_MAX)
        qconv_narrow(&flat, x, x_zp, w, w_zp, w_zp_step, bias, rq, y);
    else
        qconv_wide(g, x, x_zp, w, w_zp, w_zp_step, bias, rq, y);
}

/* Four columns of x[r] @ w, from the column j on: acc[t] += sum_i (x[i] - x_zp) * w[i][j + t]. Each x
 * load feeds four columns; its own function keeps the sums in registers (TINYC_NOINLINE). */
TINYC_NOINLINE static void dot_1x4(const int8_t *x, int32_t x_zp, const int8_t *w, int32_t k, int32_t n, int32_t *acc)
{
    const int8_t *end = x + k;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (; x < end; x++, w += n) {
        const int32_t xv = *x - x_zp;
        a0 += xv * w[0];
        a1 += xv * w[1];
        a2 += xv * w[2];
        a3 += xv * w[3];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* sum_k (x - x_zp) * (w - w_zp[j]) == sum_k (x - x_zp) * w - w_zp[j] * sum_k (x - x_zp): the inner loop
 * then reads w without a per-column subtraction. int32 sums while k * span(x_zp) * 128 fits them. */
void tinyc_qmatmul_s8(const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp, int32_t w_zp_step,
                      const int32_t *bias, const tinyc_requant *rq, void *y, int32_t rows, int32_t k, int32_t n)
{
    const int32_t narrow = (int64_t)k * span(x_zp) * 128 <= INT32_MAX;
    int32_t r, i, j, t;
    int32_t acc[4];
    int64_t sums[4];
    for (r = 0; r < rows; r++) {
        const int8_t *xr = x + r * k;
        int64_t xsum = 0;
        for (i = 0; i < k; i++)
            xsum += xr[i] - x_zp;
        for (j = 0; j < n; j += 4) {
            const int32_t len = tinyc_min(4, n - j);
            if (narrow && len == 4) {
                dot_1x4(xr, x_zp, w + j, k, n, acc);
                for (t = 0; t < 4; t++)
                    sums[t] = acc[t];
            } else { /* the last columns, in int64 where int32 cannot hold them */
                for (t = 0; t < len; t++) {
                    int32_t a = 0;
                    for (sums[t] = 0, i = 0; i < k; i++)
                        if (narrow)
                            a += (xr[i] - x_zp) * w[i * n + j + t];
                        else
                            sums[t] += ((int64_t)xr[i] - x_zp) * w[i * n + j + t];
                    sums[t] += a;
                }
            }
            for (t = 0; t < len; t++)
                store(rq, y, r * n + j + t, j + t,
                      sums[t] - (int64_t)w_zp[(j + t) * w_zp_step] * xsum + (bias ? bias[j + t] : 0));
        }
    }
}

/* narrow: (x - zp) << left_shift fits int32 with room for the sum of both (qadd_s8 checked), so each
 * rescale goes through requant_narrow where its shift allows, as in nearly every layer. */
static int8_t qadd_one(const tinyc_qadd_params *p, int32_t narrow, int32_t a, int32_t b)
{
    int64_t va, vb, out;
    if (!narrow || !requant_narrow((a - p->a_zp) * (1 << p->left_shift), p->a_multiplier, p->a_shift,
                                   TINYC_ROUND_DOUBLE, &va))
        va = tinyc_multiply_by_quantized_multiplier(tinyc_shl((int64_t)a - p->a_zp, p->left_shift), p->a_multiplier,
                                                    p->a_shift);
    if (!narrow || !requant_narrow((b - p->b_zp) * (1 << p->left_shift), p->b_multiplier, p->b_shift,
                                   TINYC_ROUND_DOUBLE, &vb))
        vb = tinyc_multiply_by_quantized_multiplier(tinyc_shl((int64_t)b - p->b_zp, p->left_shift), p->b_multiplier,
                                                    p->b_shift);
    if (va + vb != (int32_t)(va + vb) || !requant_narrow((int32_t)(va + vb), p->out_multiplier, p->out_shift,
                                                         p->rounding, &out))
        out = p->rounding == TINYC_ROUND_SINGLE
                  ? tinyc_multiply_by_quantized_multiplier_single(va + vb, p->out_multiplier, p->out_shift)
                  : tinyc_multiply_by_quantized_multiplier(va + vb, p->out_multiplier, p->out_shift);
    return (int8_t)tinyc_clamp(out + p->out_zp, p->out_min, p->out_max);
}

void tinyc_qadd_s8(const tinyc_bcast *b, const tinyc_qadd_params *p, const int8_t *x0, const int8_t *x1, int8_t *y)
{
    const int32_t last = b->ndim - 1, len = b->shape[last];
    const int32_t sa = b->stride_a[last], sb = b->stride_b[last];
    const int32_t narrow = p->left_shift <= 22
                           && (span(p->a_zp) > span(p->b_zp) ? span(p->a_zp) : span(p->b_zp)) << p->left_shift
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
