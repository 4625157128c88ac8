/* tinyc portable C99 kernels of tinyc/ir/ops_requant.py: TFLite's int8 Mul and the requantized average. */
#ifndef TINYC_KERNELS_REQUANT_H
#define TINYC_KERNELS_REQUANT_H

#include <stdint.h>

#include "tinyc_kernels.h"

/* y = requant((x0 - a_zp) * (x1 - b_zp)) with broadcasting (as tinyc_qadd_s8); rq is per tensor. */
void tinyc_qmul_s8(const tinyc_bcast *b, const tinyc_requant *rq, int32_t a_zp, int32_t b_zp, const int8_t *x0,
                   const int8_t *x1, int8_t *y);
/* y = requant(sum of x - x_zp over a window's counted positions) by rq's entry for the count, from count_min. */
void tinyc_qavgpool_requant_s8(const tinyc_window *g, const int8_t *x, int8_t *y, int32_t count_include_pad,
                               int32_t x_zp, const tinyc_requant *rq, int32_t count_min);
/* The same where each window is its whole plane of n values (no padding): y[p] = requant(sum of plane p
 * - n x_zp) by rq's entry n - count_min; n <= 2**22. */
void tinyc_global_avgpool_requant_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t n, int32_t x_zp,
                                     const tinyc_requant *rq, int32_t count_min);

#endif
