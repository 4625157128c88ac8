/* tinyc portable C99 kernels of the ops in tinyc/ir/ops_math.py and ops_tensor.py: one generic kernel
 * per family (an enum selects the function), so a new elementwise op is a case, not a kernel. */
#ifndef TINYC_KERNELS_OPS_H
#define TINYC_KERNELS_OPS_H

#include <stdint.h>

#include "tinyc_kernels.h"

/* y = f(x) elementwise; a and b are the function's parameters (alpha, beta, exponent, gamma). */
enum {
    TINYC_FN_TANH, TINYC_FN_EXP, TINYC_FN_LOG, TINYC_FN_SQRT, TINYC_FN_ERF, TINYC_FN_NEG, TINYC_FN_ABS,
    TINYC_FN_RECIPROCAL, TINYC_FN_SOFTPLUS, TINYC_FN_POW, TINYC_FN_LEAKY_RELU, TINYC_FN_ELU, TINYC_FN_SELU,
    TINYC_FN_HARD_SIGMOID, TINYC_FN_HARD_SWISH
};
void tinyc_unary_f32(const float *x, float *y, int32_t size, int32_t fn, float a, float b);

/* y = f(x0, x1) with broadcasting (as tinyc_add_f32). */
enum { TINYC_BIN_SUB, TINYC_BIN_DIV, TINYC_BIN_MAX, TINYC_BIN_MIN, TINYC_BIN_PRELU, TINYC_BIN_POW };
void tinyc_binary_f32(const tinyc_bcast *b, const float *x0, const float *x1, float *y, int32_t fn);

/* Reduction of x (shape in_shape) into y: out_stride[d] is y's element stride of dim d, 0 where reduced;
 * count is how many inputs each output gathers (for the mean). */
enum { TINYC_REDUCE_SUM, TINYC_REDUCE_MEAN, TINYC_REDUCE_MAX, TINYC_REDUCE_MIN };
void tinyc_reduce_f32(const float *x, float *y, int32_t ndim, const int32_t *in_shape, const int32_t *out_stride,
                      int32_t y_size, int32_t count, int32_t mode);
void tinyc_reduce_s8(const int8_t *x, int8_t *y, int32_t ndim, const int32_t *in_shape, const int32_t *out_stride,
                     int32_t y_size, int32_t mode);
void tinyc_reduce_u8(const uint8_t *x, uint8_t *y, int32_t ndim, const int32_t *in_shape, const int32_t *out_stride,
                     int32_t y_size, int32_t mode);

/* y[o][i] = the index along the middle dim of the largest (smallest) x[o][.][i]; ties to the first index,
 * or to the last with last_index. */
void tinyc_argmax_f32(const float *x, int64_t *y, int32_t outer, int32_t len, int32_t inner, int32_t last_index,
                      int32_t smallest);
void tinyc_argmax_s8(const int8_t *x, int64_t *y, int32_t outer, int32_t len, int32_t inner, int32_t last_index,
                     int32_t smallest);
void tinyc_argmax_u8(const uint8_t *x, int64_t *y, int32_t outer, int32_t len, int32_t inner, int32_t last_index,
                     int32_t smallest);

/* y[o][j][i] = x[o][index[j]][i], elements of elem_size bytes. */
void tinyc_gather(const void *x, void *y, int32_t elem_size, int32_t outer, int32_t axis_len, int32_t inner,
                  const int32_t *index, int32_t count);

/* Element type conversion; float to integer truncates and saturates (NaN gives 0), see tinyc/ir/ops_tensor.py. */
enum { TINYC_DT_F32, TINYC_DT_S8, TINYC_DT_U8, TINYC_DT_S32, TINYC_DT_S64 };
void tinyc_cast(const void *x, int32_t from, void *y, int32_t to, int32_t size);

#endif
