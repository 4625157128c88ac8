/* tinyc/ir/ops_requant.py's ops, bit-exact with tinyc.ir.interpret. */
#include "tinyc_kernels_requant.h"
#include "tinyc_window.h"

/* acc requantized by rq's entry `index`, through requant_narrow where acc and the shift allow. */
static int8_t requant_entry(const tinyc_requant *rq, int32_t index, int64_t acc)
{
    const int32_t multiplier = rq->multiplier[index], shift = rq->shift[index];
    int64_t v;
    if (acc != (int32_t)acc || !tinyc_requant_narrow((int32_t)acc, multiplier, shift, rq->rounding, &v))
        v = rq->rounding == TINYC_ROUND_SINGLE ? tinyc_multiply_by_quantized_multiplier_single(acc, multiplier, shift)
                                               : tinyc_multiply_by_quantized_multiplier(acc, multiplier, shift);
    return (int8_t)tinyc_clamp(v + rq->out_zp, rq->out_min, rq->out_max);
}

void tinyc_qmul_s8(const tinyc_bcast *b, const tinyc_requant *rq, int32_t a_zp, int32_t b_zp, const int8_t *x0,
                   const int8_t *x1, int8_t *y)
{
    const int32_t last = b->ndim - 1, len = b->shape[last];
    const int32_t sa = b->stride_a[last], sb = b->stride_b[last];
    int32_t count = 1, idx[TINYC_MAX_DIMS] = {0}, off_a = 0, off_b = 0, t, i;
    for (t = 0; t < last; t++)
        count *= b->shape[t];
    for (t = 0; t < count; t++, y += len) {
        for (i = 0; i < len; i++) /* |product| <= 383 * 383: zero points within [-255, 255] */
            y[i] = requant_entry(rq, 0, (x0[off_a + i * sa] - a_zp) * (x1[off_b + i * sb] - b_zp));
        tinyc_bcast_step(b, last, idx, &off_a, &off_b);
    }
}

/* The taps [lo, hi) of output o along dim d that read the input, and how many read the input or its
 * declared padding (what count_include_pad counts). */
static int32_t window_taps(const tinyc_window *g, int32_t d, int32_t o, int32_t *lo, int32_t *hi)
{
    const int32_t pos = o * g->stride[d] - g->pad[d];
    int32_t plo, phi;
    tinyc_tap_range(pos, g->in[d], g->kernel[d], g->dilation[d], lo, hi);
    tinyc_tap_range(pos + g->pad[d], g->in[d] + g->pad[d] + g->pad_end[d], g->kernel[d], g->dilation[d], &plo, &phi);
    return phi - plo;
}

void tinyc_qavgpool_requant_s8(const tinyc_window *g, const int8_t *x, int8_t *y, int32_t count_include_pad,
                               int32_t x_zp, const tinyc_requant *rq, int32_t count_min)
{
    int32_t plane, o[3], lo[3], hi[3], padded, inside, kd, kh, kw, d;
    for (plane = 0; plane < g->n * g->c; plane++) {
        const int8_t *xp = x + plane * g->in[0] * g->in[1] * g->in[2];
        for (o[0] = 0; o[0] < g->out[0]; o[0]++)
            for (o[1] = 0; o[1] < g->out[1]; o[1]++)
                for (o[2] = 0; o[2] < g->out[2]; o[2]++) {
                    int64_t total = 0;
                    for (d = 0, padded = 1, inside = 1; d < 3; d++) {
                        padded *= window_taps(g, d, o[d], &lo[d], &hi[d]);
                        inside *= hi[d] - lo[d];
                    }
                    for (kd = lo[0]; kd < hi[0]; kd++)
                        for (kh = lo[1]; kh < hi[1]; kh++)
                            for (kw = lo[2]; kw < hi[2]; kw++)
                                total += xp[(tinyc_window_pos(g, 0, o[0], kd) * g->in[1] + tinyc_window_pos(g, 1, o[1], kh))
                                            * g->in[2] + tinyc_window_pos(g, 2, o[2], kw)];
                    *y++ = requant_entry(rq, (count_include_pad ? padded : inside) - count_min,
                                         total - (int64_t)inside * x_zp);
                }
    }
}

void tinyc_global_avgpool_requant_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t n, int32_t x_zp,
                                     const tinyc_requant *rq, int32_t count_min)
{
    int32_t plane;
    for (plane = 0; plane < planes; plane++, x += n)
        y[plane] = requant_entry(rq, n - count_min, (int64_t)tinyc_plane_sum(x, n) - (int64_t)n * x_zp);
}
