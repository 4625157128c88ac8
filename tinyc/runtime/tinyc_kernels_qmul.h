/* tinyc portable C99 kernel of qmul (tinyc/ir/ops_qmul.py): TFLite's int8 Mul. */
#ifndef TINYC_KERNELS_QMUL_H
#define TINYC_KERNELS_QMUL_H

#include <stdint.h>

#include "tinyc_kernels.h"

/* y = requant((x0 - a_zp) * (x1 - b_zp)) with broadcasting (as tinyc_qadd_s8); rq is per tensor. */
void tinyc_qmul_s8(const tinyc_bcast *b, const tinyc_requant *rq, int32_t a_zp, int32_t b_zp, const int8_t *x0,
                   const int8_t *x1, int8_t *y);

#endif
