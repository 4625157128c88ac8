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

void tinyc_qavgpool_requant_s8(const tinyc_window *g, const int8_t *x, int8_t *y, int32_t count_include_pad,
                               int32_t x_zp, const tinyc_requant *rq, int32_t count_min)
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
                                    total += xp[(id * g->in[1] + ih) * g->in[2] + iw] - x_zp;
                                    inside++;
                                }
                            }
                        }
                    }
                    *y++ = requant_entry(rq, (count_include_pad ? padded : inside) - count_min, total);
                }
    }
}
