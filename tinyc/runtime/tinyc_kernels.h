/* tinyc portable C99 kernels: the host-CPU implementation of every IR op (tinyc/ir/ops.py).
 *
 * Tensors are dense, row-major; spatial ops see (N, C, D, H, W), with 1-D and 2-D ops passing unit
 * leading spatial dims. Integer kernels match tinyc.ir.interpret bit for bit; no kernel allocates.
 */
#ifndef TINYC_KERNELS_H
#define TINYC_KERNELS_H

#include <stdint.h>

/* For a small step of a hot loop that -Os would otherwise call, or a kernel specialized by the
 * constants of its call. */
#if defined(__GNUC__)
#define TINYC_INLINE __inline__ __attribute__((always_inline))
#else
#define TINYC_INLINE
#endif

/* A word that may alias any bytes (the band copies and the global pool read int8 arrays by words). */
#if defined(__GNUC__)
typedef uint32_t __attribute__((may_alias)) tinyc_word;
typedef uint16_t __attribute__((may_alias)) tinyc_half;
#else
typedef uint32_t tinyc_word;
typedef uint16_t tinyc_half;
#endif

#define TINYC_MAX_DIMS 6
/* Output rows are processed in chunks of this many elements, accumulated on the stack. */
#define TINYC_CHUNK 64

/* A sliding window over (N, C, D, H, W): conv uses c, m and groups; pools use c only. */
typedef struct {
    int32_t n, c, m, groups;
    int32_t in[3], out[3], kernel[3], stride[3], dilation[3];
    int32_t pad[3], pad_end[3];
} tinyc_window;

/* Elementwise broadcast of two operands: element strides per output dim (0 where broadcast). */
typedef struct {
    int32_t ndim;
    int32_t shape[TINYC_MAX_DIMS];
    int32_t stride_a[TINYC_MAX_DIMS];
    int32_t stride_b[TINYC_MAX_DIMS];
} tinyc_bcast;

enum { TINYC_ROUND_DOUBLE, TINYC_ROUND_SINGLE };

/* Fixed-point requantization to int8: per channel when step is 1, per tensor when 0; rounding is
 * TINYC_ROUND_DOUBLE (TFLite's conv: high mul, then shift) or TINYC_ROUND_SINGLE (its fully connected). */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t step;
    int32_t out_zp, out_min, out_max;
    int32_t rounding;
} tinyc_requant;

typedef struct {
    int32_t left_shift;
    int32_t a_zp, a_multiplier, a_shift;
    int32_t b_zp, b_multiplier, b_shift;
    int32_t out_zp, out_multiplier, out_shift, out_min, out_max;
    int32_t rounding; /* of the output rescale: TINYC_ROUND_DOUBLE or TINYC_ROUND_SINGLE */
} tinyc_qadd_params;

enum { TINYC_PAD_CONSTANT, TINYC_PAD_REFLECT, TINYC_PAD_EDGE };

/* The analog array's read-out (tinyc/ir/adc.py): the ADC's rounding shift and clip, then the digital
 * multiply-add of the bias and a rounding shift to the clipped output. */
typedef struct {
    int32_t adc_shift, adc_min, adc_max;
    int32_t post_multiplier, post_shift;
    int32_t out_min, out_max;
} tinyc_adc;

/* ---- TFLite fixed-point arithmetic (tinyc/ir/quant_math.py), in int64 without undefined behavior:
 * wrapping products go through uint64 and right shifts of negative values are written as floors. */
static inline int64_t tinyc_asr(int64_t x, int32_t e)
{
    return x >= 0 ? x >> e : ~(~x >> e);
}

static inline int64_t tinyc_shl(int64_t x, int32_t e)
{
    return (int64_t)((uint64_t)x << e);
}

static inline int64_t tinyc_rounding_doubling_high_mul(int64_t a, int32_t b)
{
    int64_t ab, total;
    if (a == b && b == INT32_MIN)
        return INT32_MAX;
    ab = (int64_t)((uint64_t)a * (uint64_t)(int64_t)b);
    total = (int64_t)((uint64_t)ab + (uint64_t)(ab >= 0 ? (1 << 30) : 1 - (1 << 30)));
    return total / ((int64_t)1 << 31); /* C division truncates toward zero, as TFLite relies on */
}

static inline int64_t tinyc_rounding_divide_by_pot(int64_t x, int32_t e)
{
    const int64_t mask = (int64_t)(((uint64_t)1 << e) - 1);
    const int64_t threshold = (mask >> 1) + (x < 0);
    return tinyc_asr(x, e) + ((x & mask) > threshold);
}

static inline int64_t tinyc_multiply_by_quantized_multiplier(int64_t x, int32_t multiplier, int32_t shift)
{
    return tinyc_rounding_divide_by_pot(
        tinyc_rounding_doubling_high_mul(tinyc_shl(x, shift > 0 ? shift : 0), multiplier),
        shift > 0 ? 0 : -shift);
}

/* x * multiplier * 2**(shift - 31) rounded once, half up; shift <= 30. */
static inline int64_t tinyc_multiply_by_quantized_multiplier_single(int64_t x, int32_t multiplier, int32_t shift)
{
    const int32_t total = 31 - shift;
    const uint64_t half = (uint64_t)1 << (total - 1);
    return tinyc_asr((int64_t)((uint64_t)x * (uint64_t)(int64_t)multiplier + half), total);
}

/* floor(x / 2**e), 0 <= e <= 31. */
static inline int32_t tinyc_asr32(int32_t x, int32_t e)
{
    return x < 0 ? ~(~x >> e) : x >> e;
}

/* floor(x / 2**31) of a product plus a rounding term (|x| < 2**63) from its two words: the high word
 * shifted up once and the low word's top bit. */
static inline int32_t tinyc_high_half(int64_t x)
{
    const uint64_t u = (uint64_t)x;
    return (int32_t)((uint32_t)(u >> 32) << 1 | (uint32_t)u >> 31);
}

/* The requantization of an int32 accumulator in 32-bit words where its shift allows (shift < 0 for
 * single rounding, -31 <= shift <= 0 for double), what nearly every layer has: the same values as
 * tinyc_multiply_by_quantized_multiplier(_single), without their int64 shifts. *v is the result. */
static inline int32_t tinyc_requant_narrow(int32_t acc, int32_t multiplier, int32_t shift, int32_t rounding, int64_t *v)
{
    if (rounding == TINYC_ROUND_SINGLE) {
        const int32_t total = 31 - shift;
        int64_t half;
        if (total < 32 || total > 63)
            return 0;
        half = total > 32 ? (int64_t)((uint64_t)(1u << (total - 33)) << 32) : (int64_t)1 << 31;
        /* floor((acc * multiplier + half) / 2**total): the high word of the sum, shifted on */
        *v = tinyc_asr32((int32_t)(uint32_t)((uint64_t)((int64_t)acc * multiplier + half) >> 32), total - 32);
    } else {
        int64_t ab;
        int32_t high, mask;
        if (shift > 0 || shift < -31 || (acc == INT32_MIN && multiplier == INT32_MIN))
            return 0;
        ab = (int64_t)acc * multiplier;
        /* the rounding doubling high mul: C's truncating division by 2**31 of ab plus the nudge */
        high = ab >= 0 ? tinyc_high_half(ab + (1 << 30)) : -tinyc_high_half(-(ab + 1 - (1 << 30)));
        mask = (int32_t)((1u << -shift) - 1);
        *v = tinyc_asr32(high, -shift) + ((high & mask) > (mask >> 1) + (high < 0));
    }
    return 1;
}

/* max |v - zp| over int8 v: with it, taps * span(x_zp) * span(w_zp) bounds every accumulator. */
static inline int64_t tinyc_zp_span(int32_t zp)
{
    return zp < 0 ? 127 - (int64_t)zp : 128 + (int64_t)zp;
}

static inline int32_t tinyc_clamp(int64_t x, int32_t lo, int32_t hi)
{
    return (int32_t)(x < lo ? lo : x > hi ? hi : x);
}

/* (x + 2**(s-1)) >> s with a floor shift; x for s = 0 (the analog read-out's rounding). */
static inline int64_t tinyc_round_shift(int64_t x, int32_t s)
{
    return s ? tinyc_asr(x + ((int64_t)1 << (s - 1)), s) : x;
}

/* One output of the analog array from its accumulation (tinyc/ir/adc.py, adc_out). */
static inline int8_t tinyc_adc_out(int64_t acc, int64_t bias, const tinyc_adc *a)
{
    const int64_t adc = tinyc_clamp(tinyc_round_shift(acc, a->adc_shift), a->adc_min, a->adc_max);
    return (int8_t)tinyc_clamp(tinyc_round_shift(adc * a->post_multiplier + bias, a->post_shift), a->out_min,
                               a->out_max);
}

/* ---- kernels the C backend plans at compile time (tinyc/backends/c/kernels.py, plan_qconv and
 * plan_qdense): it packs the weights, folds x's zero point into the bias and proves each bound below. */
enum { TINYC_RQ_SHIFT, TINYC_RQ_POW2, TINYC_RQ_DOUBLE, TINYC_RQ_SINGLE, TINYC_RQ_SINGLE_LOW, TINYC_RQ_DOUBLE_NARROW };

/* Per-channel requantization of an int32 sum of raw x times w. e is a right shift in 0..31: for
 * TINYC_RQ_SHIFT the one rounding shift (a + 2**(e-1)) >> e that single rounding by the multiplier 2**30
 * comes to, e = 1 - shift (every scale a power of two); for TINYC_RQ_DOUBLE the rounding divide after the doubling high mul (TINYC_RQ_DOUBLE_NARROW the
 * same where |2 * (acc + bias)| < 2**31), TINYC_RQ_POW2 the same with the
 * multiplier 2**30 (every scale a power of two), TINYC_RQ_SINGLE 31 - shift - 32 of the single rounding
 * (31 - shift >= 32), TINYC_RQ_SINGLE_LOW its whole 31 - shift (1..31: a scale of at least 1/2). The
 * planner proves that acc + bias, the rounding terms added to it and the result fit int32. */
typedef struct {
    const int32_t *bias; /* bias - x_zp * (sum of the channel's weights) */
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t mode, out_zp, out_min, out_max;
} tinyc_rq32;

/* The inner loop a planned conv runs: blocks over any list of taps; or, for a depthwise 3x3 of dilation 1
 * and pads of at most one, its nine weights in registers and x read in place: row by row (column stride
 * 1 or 2, up to 4 * TINYC_CHUNK outputs a row) or, on planes a few outputs wide, window by window. */
enum { TINYC_INNER_TAPS, TINYC_INNER_DEPTHWISE_3X3, TINYC_INNER_DEPTHWISE_SMALL };

/* A 2-D (or 1-D: one row) int8 conv of batch 1, requantized to int8; a pointwise conv comes as one
 * long row. Each output sums sum_t x[origin + taps[t]] * w[t] over its group's ntaps taps, the origin
 * of output (r, c) lying r * sh rows and c * sw columns into src: x itself where nothing is padded
 * (band NULL), else a band of the group's channels, band_rows rows of band_w columns each, into which
 * fill_rows output rows' inputs are copied at a time, surrounded by x_zp. A depthwise 3x3 reads x
 * itself: row by row, its band is one row of x_zp (no taps); window by window, taps describes each
 * output's window (tinyc_kernels_plan.c, depthwise_small). */
typedef struct {
    int32_t groups, cg, mg;       /* groups; input and output channels of each */
    int32_t h, w, oh, ow, sh, sw; /* input rows and columns, output rows and columns, strides */
    int32_t ntaps;                /* cg * kernel taps */
    const int32_t *taps;          /* each tap's offset from a window's origin, in the weights' order */
    const int8_t *weights;        /* per group: blocks of four channels as [ntaps][4], then each other [ntaps] */
    tinyc_rq32 rq;
    int8_t *band;
    int32_t band_w, band_rows, fill_rows, pad_t, lead, x_zp;
    int32_t inner;
    int32_t clip_l, clip_r; /* a depthwise 3x3: 1 where the first (last) output's window has a column left
                               (right) of the plane */
} tinyc_qconv_plan;

/* y[r][j] = x[r] @ w[:, j] over rows of k inputs, requantized per column; w packed as blocks of sixteen
 * columns [k][16], then blocks of four [k][4], the last one filled up with zero columns. */
typedef struct {
    int32_t k, n;
    const int8_t *weights;
    tinyc_rq32 rq;
} tinyc_qdense_plan;

/* Advances a multi-index over dims [0, ndim) in row-major order, tracking two operands' offsets. */
static inline void tinyc_bcast_step(const tinyc_bcast *b, int32_t ndim, int32_t *idx, int32_t *off_a,
                                    int32_t *off_b)
{
    int32_t d;
    for (d = ndim - 1; d >= 0; d--) {
        *off_a += b->stride_a[d];
        *off_b += b->stride_b[d];
        if (++idx[d] < b->shape[d])
            return;
        *off_a -= b->stride_a[d] * b->shape[d];
        *off_b -= b->stride_b[d] * b->shape[d];
        idx[d] = 0;
    }
}

/* ---- float32 (tinyc_kernels_float.c) */
void tinyc_conv_f32(const tinyc_window *g, const float *x, const float *w, const float *bias, float *y);
/* y[batch][M][N] = a[batch][M][K] @ b[batch][K][N]; the bcast walks the batch dims, strides in elements. */
void tinyc_matmul_f32(const tinyc_bcast *batch, const float *a, const float *b, float *y, int32_t m, int32_t k,
                      int32_t n);
void tinyc_add_f32(const tinyc_bcast *b, const float *x0, const float *x1, float *y);
void tinyc_mul_f32(const tinyc_bcast *b, const float *x0, const float *x1, float *y);
void tinyc_relu_f32(const float *x, float *y, int32_t size);
void tinyc_clip_f32(const float *x, float *y, int32_t size, float lo, float hi);
void tinyc_sigmoid_f32(const float *x, float *y, int32_t size);
void tinyc_softmax_f32(const float *x, float *y, int32_t outer, int32_t axis, int32_t inner);
void tinyc_avgpool_f32(const tinyc_window *g, const float *x, float *y, int32_t count_include_pad);
void tinyc_maxpool_f32(const tinyc_window *g, const float *x, float *y);

/* ---- quantization boundary and integer ops (tinyc_kernels_int.c) */
/* [outer][channels][inner]; step 1: a table per channel, 0: one for all. steps: 256 words per channel
 * (tinyc/backends/c/kernels_quant.py), the code found among them by x's bits alone. */
void tinyc_quantize_s8(const float *x, int8_t *y, int32_t outer, int32_t channels, int32_t inner,
                       const uint32_t *steps, int32_t step);
void tinyc_quantize_u8(const float *x, uint8_t *y, int32_t outer, int32_t channels, int32_t inner,
                       const uint32_t *steps, int32_t step);
/* table: 256 floats per channel, the codes' values from the dtype's minimum up. */
void tinyc_dequantize_s8(const int8_t *x, float *y, int32_t outer, int32_t channels, int32_t inner,
                         const float *table, int32_t step);
void tinyc_dequantize_u8(const uint8_t *x, float *y, int32_t outer, int32_t channels, int32_t inner,
                         const float *table, int32_t step);
void tinyc_dequantize_s32(const int32_t *x, float *y, int32_t outer, int32_t channels, int32_t inner,
                          const float *scale, const int32_t *zero_point, int32_t step);
void tinyc_flip_sign(const void *x, void *y, int32_t size);
void tinyc_relu_s8(const int8_t *x, int8_t *y, int32_t size);
void tinyc_maxpool_s8(const tinyc_window *g, const int8_t *x, int8_t *y);
void tinyc_maxpool_u8(const tinyc_window *g, const uint8_t *x, uint8_t *y);
/* rq NULL: y is the int32 accumulator (plus bias); otherwise int8. w_zp_step as tinyc_requant.step. */
void tinyc_qconv_s8(const tinyc_window *g, const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp,
                    int32_t w_zp_step, const int32_t *bias, const tinyc_requant *rq, void *y);
/* The analog job's ops: a conv (groups 1) and x[rows][K] @ w[K][N], each read out through the ADC. */
void tinyc_aconv_s8(const tinyc_window *g, const int8_t *x, const int8_t *w, const int32_t *bias,
                    const tinyc_adc *adc, int8_t *y);
void tinyc_amatmul_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const tinyc_adc *adc, int8_t *y,
                      int32_t rows, int32_t k, int32_t n);
/* x[rows][K] @ w[K][N], requantized per column. */
void tinyc_qmatmul_s8(const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *w_zp, int32_t w_zp_step,
                      const int32_t *bias, const tinyc_requant *rq, void *y, int32_t rows, int32_t k, int32_t n);
void tinyc_qadd_s8(const tinyc_bcast *b, const tinyc_qadd_params *p, const int8_t *x0, const int8_t *x1, int8_t *y);
void tinyc_qavgpool_s8(const tinyc_window *g, const int8_t *x, int8_t *y, int32_t count_include_pad, int32_t x_zp,
                       int32_t out_min, int32_t out_max);
void tinyc_lut_s8(const int8_t *x, int8_t *y, int32_t size, const int8_t *table);
void tinyc_qsoftmax_s8(const int8_t *x, int8_t *y, int32_t outer, int32_t axis, int32_t inner,
                       const int32_t *table, int64_t inv_out_scale, int32_t out_zp);

/* An int8 add planned at compile time: each input's rescale ((x - zp) << left_shift, times its
 * multiplier) tabled over the 256 int8 values x (at x + 128), the sum requantized by rq. */
typedef struct {
    const int32_t *a, *b;
    tinyc_rq32 rq;
} tinyc_qadd_plan;

/* ---- the planned kernels (tinyc_kernels_plan.c; the add in tinyc_kernels_int.c) */
/* y[i * ystep] for i < n: acc[i] of channel ch requantized to int8. */
void tinyc_rq32_run(const tinyc_rq32 *q, int32_t ch, const int32_t *acc, int32_t n, int8_t *y, int32_t ystep);
void tinyc_qconv_plan_s8(const tinyc_qconv_plan *p, const int8_t *x, int8_t *y);
/* A planned depthwise 3x3 (inner TINYC_INNER_DEPTHWISE_3X3 or _SMALL: tinyc_kernels_depthwise.c). */
void tinyc_qconv_depthwise_s8(const tinyc_qconv_plan *p, const int8_t *x, int8_t *y);
void tinyc_qdense_plan_s8(const tinyc_qdense_plan *p, const int8_t *x, int8_t *y, int32_t rows);
void tinyc_qadd_plan_s8(const tinyc_bcast *b, const tinyc_qadd_plan *p, const int8_t *x0, const int8_t *x1, int8_t *y);

/* ---- data movement, any dtype (tinyc_kernels_data.c) */
/* y[i...] = x[sum(i[d] * in_stride[d])] over the output shape: any permutation or strided view. */
void tinyc_transpose(const void *x, void *y, int32_t elem_size, int32_t ndim, const int32_t *out_shape,
                     const int32_t *in_stride);
/* x [h][bh][w][bw] -> y [bh][bw][h][w] of bytes: a space-to-depth by blocks of bh x bw (a transpose). */
void tinyc_space_to_depth_b1(const uint8_t *x, uint8_t *y, int32_t h, int32_t bh, int32_t w, int32_t bw);
/* rows blocks of row_bytes from x (contiguous) into y, one block every y_stride bytes: a concat input. */
void tinyc_copy_rows(const void *x, void *y, int32_t rows, int32_t row_bytes, int32_t y_stride);
void tinyc_pad(const void *x, void *y, int32_t elem_size, int32_t ndim, const int32_t *in_shape,
               const int32_t *out_shape, const int32_t *pad_begin, int32_t mode, const void *value);

#include "tinyc_kernels_requant.h" /* qmul, qavgpool_requant */
#include "tinyc_kernels_ops.h" /* the math and data movement kernels beyond these */
#include "tinyc_pool.h" /* the global average pool, inlined where it is called */
#include "tinyc_space_to_depth.h" /* the padded space-to-depth, inlined where it is called */
#include "tinyc_transpose.h" /* the 2-D byte transpose, inlined where it is called */

#endif
