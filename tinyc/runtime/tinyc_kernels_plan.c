/* The int8 conv and dense kernels the C backend plans at compile time (tinyc_qconv_plan,
 * tinyc_qdense_plan): bit-exact with tinyc.ir.interpret under the bounds the planner proves.
 *
 * RV32IMC has no SIMD, so a MAC costs a mul and an add at least; what the blocking buys is fewer loads
 * per MAC. A conv block is four outputs of a row times four output channels: per tap, four x loads
 * and four weight loads feed sixteen MACs. Each block is its own function so that its sixteen sums keep
 * RV32's registers (TINYC_NOINLINE), and the column stride is a constant of the function (1 and 2, the
 * strides of MLPerf Tiny's layers; any other takes the _sn copy), so the four loads of a tap take
 * immediate offsets from one address. A 1x1 conv steps a pointer through its input channels instead of a
 * tap list; with exactly sixteen of them (MobileNet's pw2, ResNet-8's 1x1 shortcut) the taps are
 * unrolled: at sixteen MACs an output, the requantization's five instructions cost 0.31 a MAC, and the
 * loop's step and test (2 of a tap's 43) would keep the layer above 3 (2.5 KB of code a column stride).
 * A depthwise 3x3 keeps its nine weights in registers instead
 * (tinyc_kernels_depthwise.c); a dense layer's block is sixteen columns of one input (no reuse of
 * weights is possible at batch 1).
 */
#include "tinyc_kernels.h"
#include "tinyc_plan_rq.h"
#include "tinyc_window.h"

#include <stddef.h>

/* The sums of a block go to acc[i * TINYC_CHUNK + j] (channel i, column j of the chunk). */
#define ROW TINYC_CHUNK

/* acc[i][j] = sum_t row[taps[t] + j * S] * w[4 * t + i]: four columns j of four channels i. */
#define TINYC_BLOCK_4X4(NAME, S)                                                                      \
    TINYC_NOINLINE static void NAME(const int8_t *row, int32_t s, const int32_t *taps, int32_t ntaps,  \
                                    const int8_t *w, int32_t *acc)                                    \
    {                                                                                                 \
        const int32_t *end = taps + ntaps;                                                            \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;                       \
        int32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;                       \
        (void)s;                                                                                      \
        do { /* ntaps >= 1: the loop tests at its end only */                                         \
            const int8_t *p = row + *taps++;                                                          \
            const int32_t x0 = p[0], x1 = p[S], x2 = p[2 * (S)], x3 = p[3 * (S)];                     \
            int32_t u = w[0];                                                                         \
            a0 += u * x0, a1 += u * x1, a2 += u * x2, a3 += u * x3;                                   \
            u = w[1];                                                                                 \
            b0 += u * x0, b1 += u * x1, b2 += u * x2, b3 += u * x3;                                   \
            u = w[2];                                                                                 \
            c0 += u * x0, c1 += u * x1, c2 += u * x2, c3 += u * x3;                                   \
            u = w[3];                                                                                 \
            d0 += u * x0, d1 += u * x1, d2 += u * x2, d3 += u * x3;                                   \
            w += 4;                                                                                   \
        } while (taps != end);                                                                        \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                           \
        acc[ROW] = b0, acc[ROW + 1] = b1, acc[ROW + 2] = b2, acc[ROW + 3] = b3;                       \
        acc[2 * ROW] = c0, acc[2 * ROW + 1] = c1, acc[2 * ROW + 2] = c2, acc[2 * ROW + 3] = c3;       \
        acc[3 * ROW] = d0, acc[3 * ROW + 1] = d1, acc[3 * ROW + 2] = d2, acc[3 * ROW + 3] = d3;       \
    }

/* acc[j] = sum_t row[taps[t] + j * S] * w[t]: four columns of one channel. */
#define TINYC_BLOCK_4X1(NAME, S)                                                                      \
    TINYC_NOINLINE static void NAME(const int8_t *row, int32_t s, const int32_t *taps, int32_t ntaps,  \
                                    const int8_t *w, int32_t *acc)                                    \
    {                                                                                                 \
        const int32_t *end = taps + ntaps;                                                            \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                       \
        (void)s;                                                                                      \
        do {                                                                                          \
            const int8_t *p = row + *taps++;                                                          \
            const int32_t u = *w++;                                                                   \
            a0 += u * p[0], a1 += u * p[S], a2 += u * p[2 * (S)], a3 += u * p[3 * (S)];               \
        } while (taps != end);                                                                        \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                           \
    }

/* s is the column stride for the _sn variants; the others have theirs built in */
TINYC_BLOCK_4X4(block_4x4_s1, 1)
TINYC_BLOCK_4X4(block_4x4_s2, 2)
TINYC_BLOCK_4X4(block_4x4_sn, s)
TINYC_BLOCK_4X1(block_4x1_s1, 1)
TINYC_BLOCK_4X1(block_4x1_s2, 2)
TINYC_BLOCK_4X1(block_4x1_sn, s)

/* One output of four channels (the tail of a row): acc[i][0] = sum_t p[taps[t]] * w[4 * t + i]. */
TINYC_NOINLINE static void block_1x4(const int8_t *p, const int32_t *taps, int32_t ntaps, const int8_t *w,
                                     int32_t *acc)
{
    const int32_t *end = taps + ntaps;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (; taps != end; taps++, w += 4) {
        const int32_t x = p[*taps];
        a0 += x * w[0], a1 += x * w[1], a2 += x * w[2], a3 += x * w[3];
    }
    acc[0] = a0, acc[ROW] = a1, acc[2 * ROW] = a2, acc[3 * ROW] = a3;
}

static int32_t dot_taps(const int8_t *p, const int32_t *taps, int32_t ntaps, const int8_t *w)
{
    int32_t t, a = 0;
    for (t = 0; t < ntaps; t++)
        a += p[taps[t]] * w[t];
    return a;
}

/* acc[j] of channels ch + j, j < n, to y[j * ystep] (a dense layer's outputs, ystep 1; one output of
 * a conv's channels, ystep its plane), in mode `mode`: one call for the n channels of a short run. */
TINYC_INLINE static void columns_mode(const tinyc_rq32 *q, int32_t mode, int32_t ch, const int32_t *acc, int32_t n,
                                      int8_t *y, int32_t ystep)
{
    channel_rq c = channel_of(q, ch);
    int32_t j;
    for (j = 0; j < n; j++, y += ystep) {
        channel_set(&c, q, ch + j);
        *y = (int8_t)requant_one(&c, mode, acc[j]);
    }
}

/* One loop per mode, as tinyc_rq32_run's. */
static void requant_columns(const tinyc_rq32 *q, int32_t ch, const int32_t *acc, int32_t n, int8_t *y,
                            int32_t ystep)
{
    switch (q->mode) {
    case TINYC_RQ_SHIFT: columns_mode(q, TINYC_RQ_SHIFT, ch, acc, n, y, ystep); break;
    case TINYC_RQ_POW2: columns_mode(q, TINYC_RQ_POW2, ch, acc, n, y, ystep); break;
    case TINYC_RQ_DOUBLE: columns_mode(q, TINYC_RQ_DOUBLE, ch, acc, n, y, ystep); break;
    case TINYC_RQ_DOUBLE_NARROW: columns_mode(q, TINYC_RQ_DOUBLE_NARROW, ch, acc, n, y, ystep); break;
    case TINYC_RQ_SINGLE: columns_mode(q, TINYC_RQ_SINGLE, ch, acc, n, y, ystep); break;
    default: columns_mode(q, TINYC_RQ_SINGLE_LOW, ch, acc, n, y, ystep);
    }
}

/* u * w[J..J+3] into four columns' sums. */
#define TINYC_SUMS_1X4(U, J) a0 += (U) * w[J], a1 += (U) * w[(J) + 1], a2 += (U) * w[(J) + 2], a3 += (U) * w[(J) + 3]

/* acc[j] = sum_i x[i * step] * w[4 * i + j], four columns j: a dense layer's last block (step 1), a
 * 1x1 conv's output of four channels (step its input plane, what a row's blocks leave); four inputs a
 * loop, the weights' offsets immediates. */
TINYC_NOINLINE static void sums_1x4(const int8_t *x, int32_t step, int32_t k, const int8_t *w, int32_t *acc)
{
    const int8_t *end = x + (k & ~3) * step;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, u, i;
    for (; x != end; x += 4 * step, w += 16) {
        u = x[0], TINYC_SUMS_1X4(u, 0);
        u = x[step], TINYC_SUMS_1X4(u, 4);
        u = x[2 * step], TINYC_SUMS_1X4(u, 8);
        u = x[3 * step], TINYC_SUMS_1X4(u, 12);
    }
    for (i = 0; i < (k & 3); i++, x += step, w += 4) {
        u = *x, TINYC_SUMS_1X4(u, 0);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* One tap of a pointwise block: four inputs of one channel times its four output channels' weights. */
#define TINYC_POINTWISE_TAP(OP, S)                                                                    \
    do {                                                                                              \
        const int32_t x0 = x[0], x1 = x[S], x2 = x[2 * (S)], x3 = x[3 * (S)];                         \
        int32_t u = w[0];                                                                             \
        a0 OP u * x0, a1 OP u * x1, a2 OP u * x2, a3 OP u * x3;                                       \
        u = w[1];                                                                                     \
        b0 OP u * x0, b1 OP u * x1, b2 OP u * x2, b3 OP u * x3;                                       \
        u = w[2];                                                                                     \
        c0 OP u * x0, c1 OP u * x1, c2 OP u * x2, c3 OP u * x3;                                       \
        u = w[3];                                                                                     \
        d0 OP u * x0, d1 OP u * x1, d2 OP u * x2, d3 OP u * x3;                                       \
        x += plane, w += 4;                                                                           \
    } while (0)

/* A row of pointwise blocks: `blocks` blocks of four columns from row on (inputs of one channel S
 * apart, of the next `plane` on, span = ntaps * plane), the weights w of four channels, their outputs
 * at y[i * yplane + j], q their requantization (its arrays from the first of them on: constant
 * offsets). In memory behind one pointer, so that the tap loop keeps RV32's registers for its sums. */
typedef struct {
    const tinyc_rq32 *q;
    const int8_t *row, *w;
    int8_t *y;
    int32_t plane, span, blocks, yplane;
} pointwise_row;

/* Four outputs' requantization of the block's channel I (at the row's next four columns), from a copy
 * q of the layer's constants (the int8 stores may alias what o points to). */
#define TINYC_POINTWISE_RQ(MODE, I, A0, A1, A2, A3)                                                   \
    do {                                                                                              \
        channel_rq c;                                                                                 \
        int8_t *y = out + (I) * yplane;                                                               \
        c.zp = q.out_zp, c.lo = q.out_min, c.hi = q.out_max;                                          \
        channel_set(&c, &q, I);                                                                       \
        y[0] = (int8_t)requant_one(&c, MODE, A0), y[1] = (int8_t)requant_one(&c, MODE, A1);           \
        y[2] = (int8_t)requant_one(&c, MODE, A2), y[3] = (int8_t)requant_one(&c, MODE, A3);           \
    } while (0)

/* The sums of a 1x1 conv's block of four columns (inputs S apart) of four channels: its taps are the
 * input channels, `plane` apart, so the loop steps a pointer instead of reading a tap list, and the
 * first tap sets the sums. */
#define TINYC_POINTWISE_SUMS(S, END)                                                                  \
    const int8_t *end = (END);                                                                        \
    int32_t a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3;                           \
    TINYC_POINTWISE_TAP(=, S);                                                                        \
    if (x != end)                                                                                     \
        do                                                                                            \
            TINYC_POINTWISE_TAP(+=, S);                                                               \
        while (x != end)

/* Five taps adding to the sums. */
#define TINYC_POINTWISE_TAPS5(S)                                                                      \
    TINYC_POINTWISE_TAP(+=, S);                                                                       \
    TINYC_POINTWISE_TAP(+=, S);                                                                       \
    TINYC_POINTWISE_TAP(+=, S);                                                                       \
    TINYC_POINTWISE_TAP(+=, S);                                                                       \
    TINYC_POINTWISE_TAP(+=, S)

/* As TINYC_POINTWISE_SUMS for exactly sixteen taps (input channels), unrolled: no loop step or test,
 * the weights' offsets immediates (END unused). */
#define TINYC_POINTWISE_SUMS16(S, END)                                                                \
    int32_t a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3;                           \
    TINYC_POINTWISE_TAP(=, S);                                                                        \
    TINYC_POINTWISE_TAPS5(S);                                                                         \
    TINYC_POINTWISE_TAPS5(S);                                                                         \
    TINYC_POINTWISE_TAPS5(S)

/* The block's sixteen sums complete before what follows loads P's fields (no instruction): gcc would
 * sink the last taps into the requantization and spill the sums to make room for its constants. */
#if defined(__GNUC__) && defined(__riscv) /* sixteen register operands: more than x86 has */
#define TINYC_POINTWISE_DONE(P)                                                                       \
    __asm__("" : "+r"(P) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(b2), "r"(b3),         \
            "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(d0), "r"(d1), "r"(d2), "r"(d3))
#else
#define TINYC_POINTWISE_DONE(P) (void)0
#endif

/* A row of blocks (pointwise_row), each's sixteen sums requantized from registers (mode MODE): the
 * shift mode's few constants leave the tap loop its registers (the double modes' would not: their
 * blocks store the sums, as block_4x4). One call a row saves each block's call and register saves. */
#define TINYC_POINTWISE_4X4(NAME, S, MODE, SUMS)                                                      \
    TINYC_NOINLINE static void NAME(pointwise_row *o)                                                 \
    {                                                                                                 \
        do {                                                                                          \
            const int8_t *x = o->row, *w = o->w;                                                      \
            const int32_t plane = o->plane;                                                           \
            SUMS(S, x + o->span);                                                                     \
            TINYC_POINTWISE_DONE(o);                                                                  \
            {                                                                                         \
                const tinyc_rq32 q = *o->q;                                                           \
                const int32_t yplane = o->yplane;                                                     \
                int8_t *out = o->y;                                                                   \
                TINYC_POINTWISE_RQ(MODE, 0, a0, a1, a2, a3);                                          \
                TINYC_POINTWISE_RQ(MODE, 1, b0, b1, b2, b3);                                          \
                TINYC_POINTWISE_RQ(MODE, 2, c0, c1, c2, c3);                                          \
                TINYC_POINTWISE_RQ(MODE, 3, d0, d1, d2, d3);                                          \
            }                                                                                         \
            o->row += 4 * (S), o->y += 4;                                                             \
        } while (--o->blocks);                                                                        \
    }

/* The block's sums into acc[i * TINYC_CHUNK + j], as block_4x4's. */
#define TINYC_POINTWISE_STORE(NAME, S)                                                                \
    TINYC_NOINLINE static void NAME(const int8_t *x, int32_t plane, int32_t ntaps, const int8_t *w,    \
                                    int32_t *acc)                                                     \
    {                                                                                                 \
        TINYC_POINTWISE_SUMS(S, x + ntaps * plane);                                                   \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                           \
        acc[ROW] = b0, acc[ROW + 1] = b1, acc[ROW + 2] = b2, acc[ROW + 3] = b3;                       \
        acc[2 * ROW] = c0, acc[2 * ROW + 1] = c1, acc[2 * ROW + 2] = c2, acc[2 * ROW + 3] = c3;       \
        acc[3 * ROW] = d0, acc[3 * ROW + 1] = d1, acc[3 * ROW + 2] = d2, acc[3 * ROW + 3] = d3;       \
    }

TINYC_POINTWISE_4X4(pointwise_s1_shift, 1, TINYC_RQ_SHIFT, TINYC_POINTWISE_SUMS)
TINYC_POINTWISE_4X4(pointwise_s2_shift, 2, TINYC_RQ_SHIFT, TINYC_POINTWISE_SUMS)
TINYC_POINTWISE_4X4(pointwise16_s1_shift, 1, TINYC_RQ_SHIFT, TINYC_POINTWISE_SUMS16)
TINYC_POINTWISE_4X4(pointwise16_s2_shift, 2, TINYC_RQ_SHIFT, TINYC_POINTWISE_SUMS16)
TINYC_POINTWISE_STORE(pointwise_sums_s1, 1)
TINYC_POINTWISE_STORE(pointwise_sums_s2, 2)

/* A 1x1 conv without padding of column stride 1 or 2: its input plane (the taps' step), else 0. */
static int32_t pointwise_plane(const tinyc_qconv_plan *p)
{
    return p->ntaps == p->cg && !p->band && p->sw <= 2 ? p->h * p->w : 0;
}

/* The pointwise block for the layer's column stride and mode, or NULL (conv_rows then takes it). */
typedef void (*pointwise_block)(pointwise_row *);

static pointwise_block pointwise_of(const tinyc_qconv_plan *p)
{
    if (!pointwise_plane(p) || p->rq.mode != TINYC_RQ_SHIFT)
        return NULL;
    if (p->ntaps == 16)
        return p->sw == 1 ? pointwise16_s1_shift : pointwise16_s2_shift;
    return p->sw == 1 ? pointwise_s1_shift : pointwise_s2_shift;
}

/* One output of a 1x1 conv's four channels (q's arrays from the first on) to y[i * yplane]: its
 * ntaps inputs `step` apart from x, the weights w as a block's. */
TINYC_NOINLINE static void pointwise_column(const tinyc_rq32 *q, const int8_t *x, int32_t step, int32_t ntaps,
                                            const int8_t *w, int8_t *y, int32_t yplane)
{
    int32_t acc[4];
    sums_1x4(x, step, ntaps, w, acc);
    requant_columns(q, 0, acc, 4, y, yplane);
}

/* Output rows [0, rows) of channels [m, m + count) (count a multiple of four), as conv_rows', of a 1x1
 * conv: blocks of four columns of four channels requantized in registers, then a row's last columns
 * one at a time. One call for all the blocks of channels (a call each would cost its register saves). */
TINYC_NOINLINE static void pointwise_rows(const tinyc_qconv_plan *p, pointwise_block block, const int8_t *src,
                                          int32_t pitch, int32_t rows, const int8_t *w, int32_t m, int32_t count,
                                          int8_t *y)
{
    const int32_t ow = p->ow, plane = p->oh * p->ow, tail = ow / 4 * 4, step = pointwise_plane(p);
    int32_t i, r, c;
    for (i = 0; i < count; i += 4, w += 4 * p->ntaps, y += 4 * plane) {
        const int8_t *row = src;
        int8_t *out = y;
        tinyc_rq32 rq = p->rq;
        pointwise_row o;
        rq.bias += m + i, rq.multiplier += m + i, rq.shift += m + i;
        o.q = &rq, o.w = w, o.plane = step, o.span = p->ntaps * step, o.yplane = plane;
        for (r = 0; r < rows; r++, row += pitch, out += ow) {
            o.row = row, o.y = out, o.blocks = tail / 4;
            if (tail)
                block(&o);
            for (c = tail; c < ow; c++)
                pointwise_column(&rq, row + c * p->sw, step, p->ntaps, w, out + c, plane);
        }
    }
}

static void block_4x4(int32_t s, const int8_t *row, const int32_t *taps, int32_t ntaps, const int8_t *w,
                      int32_t *acc)
{
    if (s == 1)
        block_4x4_s1(row, 1, taps, ntaps, w, acc);
    else if (s == 2)
        block_4x4_s2(row, 2, taps, ntaps, w, acc);
    else
        block_4x4_sn(row, s, taps, ntaps, w, acc);
}

static void block_4x1(int32_t s, const int8_t *row, const int32_t *taps, int32_t ntaps, const int8_t *w,
                      int32_t *acc)
{
    if (s == 1)
        block_4x1_s1(row, 1, taps, ntaps, w, acc);
    else if (s == 2)
        block_4x1_s2(row, 2, taps, ntaps, w, acc);
    else
        block_4x1_sn(row, s, taps, ntaps, w, acc);
}

/* The sums of `len` outputs of a row of `count` channels (1 or 4), their windows at row, into
 * acc[i * TINYC_CHUNK + j]: blocks of four columns, then one at a time. */
static void row_sums(const tinyc_qconv_plan *p, const int8_t *row, const int8_t *w, int32_t count, int32_t len,
                     int32_t *acc)
{
    const int32_t s = p->sw, plane = pointwise_plane(p);
    int32_t c;
    for (c = 0; c + 4 <= len; c += 4) {
        if (count == 4 && plane)
            (s == 1 ? pointwise_sums_s1 : pointwise_sums_s2)(row + c * s, plane, p->ntaps, w, acc + c);
        else if (count == 4)
            block_4x4(s, row + c * s, p->taps, p->ntaps, w, acc + c);
        else
            block_4x1(s, row + c * s, p->taps, p->ntaps, w, acc + c);
    }
    for (; c < len; c++) {
        if (count == 4)
            block_1x4(row + c * s, p->taps, p->ntaps, w, acc + c);
        else
            acc[c] = dot_taps(row + c * s, p->taps, p->ntaps, w);
    }
}

/* Output rows [0, rows) of `count` channels from channel m on, rows `pitch` apart in src: the sums of
 * as many whole rows as TINYC_CHUNK columns hold (of a row's chunks where it is longer), then their
 * requantization channel by channel (a channel's rows are contiguous in y). */
static void conv_rows(const tinyc_qconv_plan *p, const int8_t *src, int32_t pitch, int32_t rows, const int8_t *w,
                      int32_t m, int32_t count, int8_t *y)
{
    const int32_t ow = p->ow, plane = p->oh * p->ow, per = ow <= ROW ? ROW / ow : 1;
    int32_t acc[4 * ROW], r0, r, c0, i;
    for (r0 = 0; r0 < rows; r0 += per) {
        const int32_t n = tinyc_min(per, rows - r0);
        for (c0 = 0; c0 < ow; c0 += ROW) {
            const int32_t len = tinyc_min(ROW, ow - c0);
            for (r = 0; r < n; r++)
                row_sums(p, src + (r0 + r) * pitch + c0 * p->sw, w, count, len, acc + r * ow);
            for (i = 0; i < count; i++)
                tinyc_rq32_run(&p->rq, m + i, acc + i * ROW, n * len, y + i * plane + r0 * ow + c0, 1);
        }
    }
}

/* Copies the input rows of output rows [r0, r0 + fill_rows) of one group into the band: row b of the
 * band is input row r0 * sh - pad_t + b, from column lead on (the taps add lead - pad_l, so that
 * windows start where the padding does). Its padding columns keep the x_zp the layer set once; a row
 * outside the input gets x_zp anew only where a band of several fills may have held data there. */
static void fill_band(const tinyc_qconv_plan *p, const int8_t *xg, int32_t r0)
{
    const int32_t plane = p->h * p->w, first = r0 * p->sh - p->pad_t;
    int32_t c, r;
    int8_t *b = p->band;
    for (c = 0; c < p->cg; c++)
        for (r = 0; r < p->band_rows; r++, b += p->band_w) {
            if (first + r >= 0 && first + r < p->h)
                tinyc_copy_bytes(b + p->lead, xg + c * plane + (first + r) * p->w, p->w);
            else if (p->fill_rows < p->oh)
                tinyc_set_bytes(b, p->x_zp, p->band_w);
        }
}

void tinyc_qconv_plan_s8(const tinyc_qconv_plan *p, const int8_t *x, int8_t *y)
{
    const int32_t plane = p->oh * p->ow, blocks = p->mg / 4 * 4;
    pointwise_block pointwise;
    int32_t g, r0, m;
    if (p->inner != TINYC_INNER_TAPS) {
        tinyc_qconv_depthwise_s8(p, x, y);
        return;
    }
    pointwise = pointwise_of(p);
    for (g = 0; g < p->groups; g++) {
        const int8_t *xg = x + g * p->cg * p->h * p->w, *wg = p->weights + g * p->mg * p->ntaps;
        int8_t *yg = y + g * p->mg * plane;
        if (p->band && g == 0)
            tinyc_set_bytes(p->band, p->x_zp, p->cg * p->band_rows * p->band_w);
        for (r0 = 0; r0 < p->oh; r0 += p->fill_rows) {
            const int32_t rows = tinyc_min(p->fill_rows, p->oh - r0);
            const int8_t *src = p->band ? p->band : xg + r0 * p->sh * p->w;
            const int32_t pitch = p->sh * (p->band ? p->band_w : p->w);
            if (p->band)
                fill_band(p, xg, r0);
            m = 0;
            if (pointwise && blocks) {
                pointwise_rows(p, pointwise, src, pitch, rows, wg, g * p->mg, blocks, yg + r0 * p->ow);
                m = blocks;
            }
            for (; m < p->mg; m += m < blocks ? 4 : 1)
                conv_rows(p, src, pitch, rows, wg + m * p->ntaps, g * p->mg + m, m < blocks ? 4 : 1,
                          yg + m * plane + r0 * p->ow);
        }
    }
}

/* acc[j] += u * w[j] for the sixteen columns j of one input u. */
#define TINYC_DENSE_16(U, W)                                                                          \
    a0 += (U) * (W)[0], a1 += (U) * (W)[1], a2 += (U) * (W)[2], a3 += (U) * (W)[3];                   \
    a4 += (U) * (W)[4], a5 += (U) * (W)[5], a6 += (U) * (W)[6], a7 += (U) * (W)[7];                   \
    b0 += (U) * (W)[8], b1 += (U) * (W)[9], b2 += (U) * (W)[10], b3 += (U) * (W)[11];                 \
    b4 += (U) * (W)[12], b5 += (U) * (W)[13], b6 += (U) * (W)[14], b7 += (U) * (W)[15]

/* acc[j] = sum_i x[i] * w[16 * i + j], sixteen columns: each x load feeds sixteen MACs, two inputs per
 * iteration; the sums, the inputs, a weight and three pointers fill RV32's registers. */
TINYC_NOINLINE static void dense_1x16(const int8_t *x, int32_t k, const int8_t *w, int32_t *acc)
{
    const int8_t *end = x + (k & ~1);
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    int32_t b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0, b7 = 0;
    for (; x != end; x += 2, w += 32) {
        const int32_t u = x[0], v = x[1];
        TINYC_DENSE_16(u, w);
        TINYC_DENSE_16(v, w + 16);
    }
    if (k & 1) {
        const int32_t u = x[0];
        TINYC_DENSE_16(u, w);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7;
    acc[8] = b0, acc[9] = b1, acc[10] = b2, acc[11] = b3, acc[12] = b4, acc[13] = b5, acc[14] = b6, acc[15] = b7;
}

void tinyc_qdense_plan_s8(const tinyc_qdense_plan *p, const int8_t *x, int8_t *y, int32_t rows)
{
    const int32_t sixteens = p->n / 16 * 16;
    int32_t r, j, acc[16];
    for (r = 0; r < rows; r++, x += p->k, y += p->n) {
        for (j = 0; j < sixteens; j += 16) {
            dense_1x16(x, p->k, p->weights + j * p->k, acc);
            requant_columns(&p->rq, j, acc, 16, y + j, 1);
        }
        for (; j < p->n; j += 4) {
            sums_1x4(x, 1, p->k, p->weights + j * p->k, acc);
            requant_columns(&p->rq, j, acc, tinyc_min(4, p->n - j), y + j, 1);
        }
    }
}
