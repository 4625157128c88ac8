/* tinyc_rq32_run: a run of one channel's sums requantized, one loop per mode (tinyc_plan_rq.h). */
#include "tinyc_kernels.h"
#include "tinyc_plan_rq.h"
#include "tinyc_window.h"

/* n >= 1 sums of one channel, acc[i] to y[i * ystep]. */
TINYC_INLINE static void run_mode(const channel_rq *c, int32_t mode, const int32_t *acc, int32_t n, int8_t *y,
                                  int32_t ystep)
{
    const int32_t *end = acc + n;
    do { /* n >= 1 */
        *y = (int8_t)requant_one(c, mode, *acc++);
        y += ystep;
    } while (acc != end);
}

/* One loop per mode, its branches resolved (-Os would test the mode at every output). */
void tinyc_rq32_run(const tinyc_rq32 *q, int32_t ch, const int32_t *acc, int32_t n, int8_t *y, int32_t ystep)
{
    const channel_rq c = channel_of(q, ch);
    switch (c.mode) {
    case TINYC_RQ_SHIFT: run_mode(&c, TINYC_RQ_SHIFT, acc, n, y, ystep); break;
    case TINYC_RQ_POW2: run_mode(&c, TINYC_RQ_POW2, acc, n, y, ystep); break;
    case TINYC_RQ_DOUBLE: run_mode(&c, TINYC_RQ_DOUBLE, acc, n, y, ystep); break;
    case TINYC_RQ_DOUBLE_NARROW: run_mode(&c, TINYC_RQ_DOUBLE_NARROW, acc, n, y, ystep); break;
    case TINYC_RQ_SINGLE: run_mode(&c, TINYC_RQ_SINGLE, acc, n, y, ystep); break;
    default: run_mode(&c, TINYC_RQ_SINGLE_LOW, acc, n, y, ystep);
    }
}
