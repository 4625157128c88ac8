/* Kernels of tinyc/ir/ops_math.py and ops_tensor.py. Each float formula is written as the numpy
 * reference computes it, in float32, so results stay within rounding of tinyc.ir.interpret. */
#include <math.h>
#include <string.h>

#include "tinyc_kernels_ops.h"

static float tinyc_hard_sigmoid(float x, float alpha, float beta)
{
    const float v = alpha * x + beta;
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

static float tinyc_elu(float x, float alpha)
{
    return x < 0.0f ? alpha * (expf(x) - 1.0f) : x;
}

#define TINYC_MAP(EXPR)             \
    for (i = 0; i < size; i++) {    \
        const float v = x[i];       \
        y[i] = (EXPR);              \
    }                               \
    break;

void tinyc_unary_f32(const float *x, float *y, int32_t size, int32_t fn, float a, float b)
{
    int32_t i;
    switch (fn) {
    case TINYC_FN_TANH: TINYC_MAP(tanhf(v))
    case TINYC_FN_EXP: TINYC_MAP(expf(v))
    case TINYC_FN_LOG: TINYC_MAP(logf(v))
    case TINYC_FN_SQRT: TINYC_MAP(sqrtf(v))
    case TINYC_FN_ERF: TINYC_MAP((float)erf((double)v))
    case TINYC_FN_NEG: TINYC_MAP(-v)
    case TINYC_FN_ABS: TINYC_MAP(fabsf(v))
    case TINYC_FN_RECIPROCAL: TINYC_MAP(1.0f / v)
    case TINYC_FN_SOFTPLUS: TINYC_MAP(logf(expf(v) + 1.0f))
    case TINYC_FN_POW: TINYC_MAP(powf(v, a))
    case TINYC_FN_LEAKY_RELU: TINYC_MAP(v < 0.0f ? a * v : v)
    case TINYC_FN_ELU: TINYC_MAP(tinyc_elu(v, a))
    case TINYC_FN_SELU: TINYC_MAP(b * tinyc_elu(v, a))
    case TINYC_FN_HARD_SIGMOID: TINYC_MAP(tinyc_hard_sigmoid(v, a, b))
    case TINYC_FN_HARD_SWISH: TINYC_MAP(v * tinyc_hard_sigmoid(v, 1.0f / 6.0f, 0.5f))
    default:
        break;
    }
}

/* max and min written with comparisons so that NaN propagates as numpy's maximum and minimum do */
static float tinyc_max(float u, float v)
{
    return u != u || u > v ? u : v;
}

static float tinyc_min(float u, float v)
{
    return u != u || u < v ? u : v;
}

#define TINYC_ZIP(EXPR)                                                                   \
    for (t = 0; t < count; t++, y += len) {                                               \
        const float *p = x0 + off_a, *q = x1 + off_b;                                     \
        for (i = 0; i < len; i++) {                                                       \
            const float u = p[i * sa], v = q[i * sb];                                     \
            y[i] = (EXPR);                                                                \
        }                                                                                 \
        tinyc_bcast_step(b, last, idx, &off_a, &off_b);                                   \
    }                                                                                     \
    break;

void tinyc_binary_f32(const tinyc_bcast *b, const float *x0, const float *x1, float *y, int32_t fn)
{
    const int32_t last = b->ndim - 1, len = b->shape[last];
    const int32_t sa = b->stride_a[last], sb = b->stride_b[last];
    int32_t count = 1, idx[TINYC_MAX_DIMS] = {0}, off_a = 0, off_b = 0, t, i;
    for (t = 0; t < last; t++)
        count *= b->shape[t];
    switch (fn) {
    case TINYC_BIN_SUB: TINYC_ZIP(u - v)
    case TINYC_BIN_DIV: TINYC_ZIP(u / v)
    case TINYC_BIN_MAX: TINYC_ZIP(v != v ? v : tinyc_max(u, v))
    case TINYC_BIN_MIN: TINYC_ZIP(v != v ? v : tinyc_min(u, v))
    case TINYC_BIN_PRELU: TINYC_ZIP(u < 0.0f ? u * v : u)
    case TINYC_BIN_POW: TINYC_ZIP(powf(u, v))
    default:
        break;
    }
}

/* Walks x in row-major order, keeping y's offset of the current element in *o. */
static void tinyc_reduce_step(int32_t ndim, const int32_t *in_shape, const int32_t *out_stride, int32_t *idx,
                              int32_t *o)
{
    int32_t d;
    for (d = ndim - 1; d >= 0; d--) {
        *o += out_stride[d];
        if (++idx[d] < in_shape[d])
            return;
        *o -= out_stride[d] * in_shape[d];
        idx[d] = 0;
    }
}

#define TINYC_REDUCE_BODY(T, LOWEST, HIGHEST)                                                    \
    int32_t total = 1, idx[TINYC_MAX_DIMS] = {0}, o = 0, t;                                      \
    for (t = 0; t < ndim; t++)                                                                   \
        total *= in_shape[t];                                                                    \
    for (t = 0; t < y_size; t++)                                                                 \
        y[t] = mode == TINYC_REDUCE_MAX ? LOWEST : mode == TINYC_REDUCE_MIN ? HIGHEST : (T)0;    \
    for (t = 0; t < total; t++) {                                                                \
        const T v = x[t];                                                                        \
        if (mode == TINYC_REDUCE_MAX) {                                                          \
            if (v > y[o] || v != v)                                                              \
                y[o] = v;                                                                        \
        } else if (mode == TINYC_REDUCE_MIN) {                                                   \
            if (v < y[o] || v != v)                                                              \
                y[o] = v;                                                                        \
        } else {                                                                                 \
            y[o] = (T)(y[o] + v);                                                                \
        }                                                                                        \
        tinyc_reduce_step(ndim, in_shape, out_stride, idx, &o);                                  \
    }

void tinyc_reduce_f32(const float *x, float *y, int32_t ndim, const int32_t *in_shape, const int32_t *out_stride,
                      int32_t y_size, int32_t count, int32_t mode)
{
    TINYC_REDUCE_BODY(float, -INFINITY, INFINITY)
    if (mode == TINYC_REDUCE_MEAN)
        for (t = 0; t < y_size; t++)
            y[t] /= (float)count;
}

void tinyc_reduce_s8(const int8_t *x, int8_t *y, int32_t ndim, const int32_t *in_shape, const int32_t *out_stride,
                     int32_t y_size, int32_t mode)
{
    TINYC_REDUCE_BODY(int8_t, INT8_MIN, INT8_MAX)
}

void tinyc_reduce_u8(const uint8_t *x, uint8_t *y, int32_t ndim, const int32_t *in_shape, const int32_t *out_stride,
                     int32_t y_size, int32_t mode)
{
    TINYC_REDUCE_BODY(uint8_t, 0, UINT8_MAX)
}

/* A NaN is the largest and the smallest (numpy's argmax and argmin return the first NaN). */
#define TINYC_ARGMAX_BODY(T)                                                                     \
    int32_t o, i, k;                                                                             \
    for (o = 0; o < outer; o++)                                                                  \
        for (i = 0; i < inner; i++) {                                                            \
            const T *xs = x + (int64_t)o * len * inner + i;                                      \
            int32_t best = 0;                                                                    \
            for (k = 1; k < len; k++) {                                                          \
                const T v = xs[k * inner], top = xs[best * inner];                               \
                const int32_t better = smallest ? v < top : v > top;                             \
                if (top != top)                                                                  \
                    break;                                                                       \
                if (better || v != v || (last_index && v == top))                                \
                    best = k;                                                                    \
            }                                                                                    \
            y[(int64_t)o * inner + i] = best;                                                    \
        }

void tinyc_argmax_f32(const float *x, int64_t *y, int32_t outer, int32_t len, int32_t inner, int32_t last_index,
                      int32_t smallest)
{
    TINYC_ARGMAX_BODY(float)
}

void tinyc_argmax_s8(const int8_t *x, int64_t *y, int32_t outer, int32_t len, int32_t inner, int32_t last_index,
                     int32_t smallest)
{
    TINYC_ARGMAX_BODY(int8_t)
}

void tinyc_argmax_u8(const uint8_t *x, int64_t *y, int32_t outer, int32_t len, int32_t inner, int32_t last_index,
                     int32_t smallest)
{
    TINYC_ARGMAX_BODY(uint8_t)
}

void tinyc_gather(const void *x, void *y, int32_t elem_size, int32_t outer, int32_t axis_len, int32_t inner,
                  const int32_t *index, int32_t count)
{
    const size_t row = (size_t)inner * (size_t)elem_size;
    int32_t o, j;
    for (o = 0; o < outer; o++)
        for (j = 0; j < count; j++)
            memcpy((uint8_t *)y + ((size_t)o * count + j) * row,
                   (const uint8_t *)x + ((size_t)o * axis_len + index[j]) * row, row);
}

/* float -> integer: truncated, NaN as 0, saturated at [LO, HI] (doubles that convert exactly). */
#define TINYC_TO_INT(T, LO, HI)                                        \
    for (i = 0; i < size; i++) {                                       \
        const double t = trunc((double)xs[i]);                         \
        ys[i] = (T)(t != t ? 0.0 : t < (LO) ? (LO) : t > (HI) ? (HI) : t); \
    }

#define TINYC_CAST_FROM(TI)                                                           \
    {                                                                                 \
        const TI *xs = (const TI *)x;                                                 \
        switch (to) {                                                                 \
        case TINYC_DT_F32: { float *ys = (float *)y; for (i = 0; i < size; i++) ys[i] = (float)xs[i]; } break;       \
        case TINYC_DT_S8: { int8_t *ys = (int8_t *)y; TINYC_CONVERT(int8_t, -128.0, 127.0) } break;                  \
        case TINYC_DT_U8: { uint8_t *ys = (uint8_t *)y; TINYC_CONVERT(uint8_t, 0.0, 255.0) } break;                  \
        case TINYC_DT_S32: { int32_t *ys = (int32_t *)y; TINYC_CONVERT(int32_t, -2147483648.0, 2147483647.0) } break; \
        default: { int64_t *ys = (int64_t *)y; TINYC_CONVERT(int64_t, -9223372036854775808.0, 9223372036854774784.0) } break; \
        }                                                                             \
    }                                                                                 \
    break;

void tinyc_cast(const void *x, int32_t from, void *y, int32_t to, int32_t size)
{
    int32_t i;
    switch (from) {
#define TINYC_CONVERT(T, LO, HI) TINYC_TO_INT(T, LO, HI)
    case TINYC_DT_F32: TINYC_CAST_FROM(float)
#undef TINYC_CONVERT
/* integer -> integer wraps: through the unsigned type of the same width, then GCC's modulo conversion */
#define TINYC_CONVERT(T, LO, HI) for (i = 0; i < size; i++) ys[i] = (T)(uint64_t)(int64_t)xs[i];
    case TINYC_DT_S8: TINYC_CAST_FROM(int8_t)
    case TINYC_DT_U8: TINYC_CAST_FROM(uint8_t)
    case TINYC_DT_S32: TINYC_CAST_FROM(int32_t)
    default: TINYC_CAST_FROM(int64_t)
#undef TINYC_CONVERT
    }
}
