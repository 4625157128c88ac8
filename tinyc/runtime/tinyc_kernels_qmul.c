/* qmul: TFLite's int8 Mul (tinyc/ir/ops_qmul.py), bit-exact with tinyc.ir.interpret. */
#include "tinyc_kernels_qmul.h"

/* |product| <= 383 * 383 (zero points within [-255, 255]): an int32 for requant_narrow. */
static int8_t qmul_one(const tinyc_requant *rq, int32_t product)
{
    int64_t v;
    if (!tinyc_requant_narrow(product, rq->multiplier[0], rq->shift[0], rq->rounding, &v))
        v = rq->rounding == TINYC_ROUND_SINGLE
                ? tinyc_multiply_by_quantized_multiplier_single(product, rq->multiplier[0], rq->shift[0])
                : tinyc_multiply_by_quantized_multiplier(product, rq->multiplier[0], rq->shift[0]);
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
        for (i = 0; i < len; i++)
            y[i] = qmul_one(rq, (x0[off_a + i * sa] - a_zp) * (x1[off_b + i * sb] - b_zp));
        tinyc_bcast_step(b, last, idx, &off_a, &off_b);
    }
}
