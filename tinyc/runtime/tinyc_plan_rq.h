/* The planned kernels' requantization of one int32 sum (tinyc_rq32, its modes in tinyc_kernels.h),
 * inline so that a block requantizes from registers, with the mode a constant where it can be. */
#ifndef TINYC_PLAN_RQ_H
#define TINYC_PLAN_RQ_H

#include <stdint.h>

#include "tinyc_kernels.h"
#include "tinyc_window.h"

/* One channel's requantization constants (requant_one says why the sign thresholds). */
typedef struct {
    int32_t mode, e, bias, m, half, a_negative, x_negative, zp, lo, hi;
} channel_rq;

/* The channel's own constants into c (the layer's stay). */
TINYC_INLINE static void channel_set(channel_rq *c, const tinyc_rq32 *q, int32_t ch)
{
    c->e = q->shift[ch];
    c->bias = q->bias[ch];
    c->m = q->multiplier[ch];
    c->half = c->e ? 1 << (c->e - 1) : 0;
    c->a_negative = c->e ? -1 : INT32_MIN;
    c->x_negative = c->e ? 0 : INT32_MIN;
}

TINYC_INLINE static channel_rq channel_of(const tinyc_rq32 *q, int32_t ch)
{
    channel_rq c;
    c.mode = q->mode;
    c.zp = q->out_zp;
    c.lo = q->out_min;
    c.hi = q->out_max;
    channel_set(&c, q, ch);
    return c;
}

/* The pow2 mode rounds twice, (a + 1) >> 1 then (x + 2**(e-1) - (x < 0)) >> e; as x < 0 exactly when
 * a < -1 and the first sum is even, both are one shift: (a + 1 + 2**e - 2 * (a < -1)) >> (e + 1)
 * (with e = 0, (a + 1) >> 1: the threshold INT32_MIN makes the sign term vanish). The double mode's
 * high mul is floor((a * m + 2**30) / 2**31), TFLite's truncating division of the nudged product for
 * every m but INT32_MIN; where the plan proves |2a| < 2**31 (TINYC_RQ_DOUBLE_NARROW) that is the high
 * word of (2a) * m plus the carry of adding 2**31 to its low word, which is that word's top bit. Its
 * divide, (x + 2**(e-1) - (x < 0)) >> e, has the same threshold for e = 0. */
/* The int8 value in an int32: the store narrows it (a cast here would sign-extend it first). With mode
 * a constant, the other modes' branches fold away. */
TINYC_INLINE static int32_t requant_one(const channel_rq *c, int32_t mode, int32_t acc)
{
    const int32_t a = acc + c->bias;
    int32_t x;
    if (mode == TINYC_RQ_SHIFT) { /* the plan folds 2**(e-1) and zp * 2**e into the bias */
        x = tinyc_asr32(a, c->e);
    } else {
        if (mode == TINYC_RQ_POW2) {
            const int32_t neg = a < c->a_negative;
            x = tinyc_asr32(a + 1 + 2 * c->half - neg - neg, c->e + 1);
        } else if (mode == TINYC_RQ_DOUBLE || mode == TINYC_RQ_DOUBLE_NARROW) {
            if (mode == TINYC_RQ_DOUBLE) {
                const uint64_t u = (uint64_t)((int64_t)a * c->m) + (1u << 30);
                x = (int32_t)((uint32_t)(u >> 32) << 1 | (uint32_t)u >> 31);
            } else { /* |a + a| < 2**31, the plan proves */
                const uint64_t u = (uint64_t)((int64_t)(a + a) * c->m);
                x = (int32_t)(uint32_t)(u >> 32) + (int32_t)((uint32_t)u >> 31);
            }
            x = tinyc_asr32(x + c->half - (x < c->x_negative), c->e);
        } else if (mode == TINYC_RQ_SINGLE) {
            const uint64_t round = c->e ? (uint64_t)(uint32_t)c->half << 32 : (uint64_t)1 << 31;
            x = tinyc_asr32((int32_t)(uint32_t)(((uint64_t)((int64_t)a * c->m) + round) >> 32), c->e);
        } else { /* TINYC_RQ_SINGLE_LOW: the low word of the product's shift, which fits int32 */
            const uint64_t u = (uint64_t)((int64_t)a * c->m) + (uint32_t)c->half;
            x = (int32_t)((uint32_t)(u >> 32) << (32 - c->e) | (uint32_t)u >> c->e);
        }
        x += c->zp;
    }
    if (x < c->lo) /* two tests that skip a move each, where -Os makes the ?: chain three moves */
        x = c->lo;
    if (x > c->hi)
        x = c->hi;
    return x;
}

#endif
