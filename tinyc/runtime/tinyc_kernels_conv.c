/* The int8 multiply-accumulate kernels (conv, dense, and the analog array's conv and dense): bit-exact
 * with tinyc.ir.interpret. An accumulator is int32 where its bound proves it fits (TFLite's choice),
 * int64 otherwise; the requantization is shared (tinyc_requant_narrow in tinyc_kernels.h). */
#include <string.h>

#include "tinyc_kernels.h"
#include "tinyc_window.h"

/* acc plus bias, requantized to int8 (rq set) or wrapped to int32 like the reference's astype. */
static void store(const tinyc_requant *rq, void *y, int32_t index, int32_t channel, int64_t acc)
{
    if (rq) {
        const int32_t multiplier = rq->multiplier[channel * rq->step], shift = rq->shift[channel * rq->step];
        int64_t v;
        if (acc != (int32_t)acc || !tinyc_requant_narrow((int32_t)acc, multiplier, shift, rq->rounding, &v))
            v = rq->rounding == TINYC_ROUND_SINGLE ? tinyc_multiply_by_quantized_multiplier_single(acc, multiplier, shift)
                                                   : tinyc_multiply_by_quantized_multiplier(acc, multiplier, shift);
        ((int8_t *)y)[index] = (int8_t)tinyc_clamp(v + rq->out_zp, rq->out_min, rq->out_max);
    } else {
        ((int32_t *)y)[index] = (int32_t)(uint32_t)(uint64_t)acc;
    }
}

/* The largest span of per-channel (step 1) or per-tensor (step 0) zero points. */
static int64_t max_span(const int32_t *zp, int32_t step, int32_t channels)
{
    int64_t most = tinyc_zp_span(zp[0]);
    int32_t i;
    for (i = 1; i < channels * step; i++)
        most = tinyc_zp_span(zp[i]) > most ? tinyc_zp_span(zp[i]) : most;
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

/* The conv with int32 accumulators, for when taps * tinyc_zp_span(x_zp) * tinyc_zp_span(w_zp) fits them. Walks channel
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

/* sum over `channels` planes and the window's taps inside the input of (x - x_zp) * (w - w_zp), in int64:
 * one output of a conv, for the kernels whose bounds do not prove int32 (and the analog array's). */
static int64_t window_dot(const tinyc_window *g, const int8_t *x, int32_t x_zp, const int8_t *w, int32_t w_zp,
                          int32_t channels, int32_t od, int32_t oh, int32_t ow)
{
    const int32_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int32_t ksize = g->kernel[0] * g->kernel[1] * g->kernel[2];
    int64_t acc = 0;
    int32_t c, kd, kh, kw;
    for (c = 0; c < channels; c++) {
        const int8_t *xc = x + c * in_plane, *wc = w + c * ksize;
        for (kd = 0; kd < g->kernel[0]; kd++) {
            const int32_t id = tinyc_window_pos(g, 0, od, kd);
            for (kh = 0; kh < g->kernel[1] && tinyc_in_input(g, 0, id); kh++) {
                const int32_t ih = tinyc_window_pos(g, 1, oh, kh);
                for (kw = 0; kw < g->kernel[2] && tinyc_in_input(g, 1, ih); kw++) {
                    const int32_t iw = tinyc_window_pos(g, 2, ow, kw);
                    if (tinyc_in_input(g, 2, iw))
                        acc += ((int64_t)xc[(id * g->in[1] + ih) * g->in[2] + iw] - x_zp)
                               * ((int64_t)wc[(kd * g->kernel[1] + kh) * g->kernel[2] + kw] - w_zp);
                }
            }
        }
    }
    return acc;
}

/* The reference's exact sums in int64, for reductions too long for int32 (never in MLPerf Tiny). */
static void qconv_wide(const tinyc_window *g, const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp,
                       int32_t w_zp_step, const int32_t *bias, const tinyc_requant *rq, void *y)
{
    const int32_t cg = g->c / g->groups, mg = g->m / g->groups;
    const int32_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int32_t ksize = g->kernel[0] * g->kernel[1] * g->kernel[2];
    int32_t n, m, od, oh, ow, at = 0;
    for (n = 0; n < g->n; n++)
        for (m = 0; m < g->m; m++)
            for (od = 0; od < g->out[0]; od++)
                for (oh = 0; oh < g->out[1]; oh++)
                    for (ow = 0; ow < g->out[2]; ow++)
                        store(rq, y, at++, m,
                              (bias ? bias[m] : 0)
                                  + window_dot(g, x + (n * g->c + m / mg * cg) * in_plane, x_zp, w + m * cg * ksize,
                                               w_zp[m * w_zp_step], cg, od, oh, ow));
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
    if (taps * tinyc_zp_span(x_zp) * max_span(w_zp, w_zp_step, g->m) <= INT32_MAX)
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
 * then reads w without a per-column subtraction. int32 sums while k * tinyc_zp_span(x_zp) * 128 fits them. */
void tinyc_qmatmul_s8(const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp, int32_t w_zp_step,
                      const int32_t *bias, const tinyc_requant *rq, void *y, int32_t rows, int32_t k, int32_t n)
{
    const int32_t narrow = (int64_t)k * tinyc_zp_span(x_zp) * 128 <= INT32_MAX;
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

/* The analog job's conv (groups 1) on the host: the accumulation starts at 0 (the array holds no bias),
 * padding contributes nothing, and each output is read out through the ADC (tinyc_adc_out). */
void tinyc_aconv_s8(const tinyc_window *g, const int8_t *x, const int8_t *w, const int32_t *bias,
                    const tinyc_adc *adc, int8_t *y)
{
    const int32_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int32_t ksize = g->kernel[0] * g->kernel[1] * g->kernel[2];
    int32_t n, m, od, oh, ow;
    for (n = 0; n < g->n; n++)
        for (m = 0; m < g->m; m++)
            for (od = 0; od < g->out[0]; od++)
                for (oh = 0; oh < g->out[1]; oh++)
                    for (ow = 0; ow < g->out[2]; ow++)
                        *y++ = tinyc_adc_out(window_dot(g, x + n * g->c * in_plane, 0, w + m * g->c * ksize, 0,
                                                           g->c, od, oh, ow),
                                                bias ? bias[m] : 0, adc);
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
            y[r * n + j] = tinyc_adc_out(acc, bias ? bias[j] : 0, adc);
        }
}
