/* The int8 conv and dense kernels the C backend plans at compile time (tinyc_qconv_plan,
 * tinyc_qdense_plan): bit-exact with tinyc.ir.interpret under the bounds the planner proves.
 *
 * RV32IMC has no SIMD, so a MAC costs a mul and an add at least; what the blocking buys is fewer loads
 * per MAC. A conv block is four outputs of a row times four output channels: per tap, four x loads
 * and four weight loads feed sixteen MACs. Each block is its own function so that its sixteen sums keep
 * RV32's registers (TINYC_NOINLINE), and the column stride is a constant of the function (1 and 2, the
 * strides of MLPerf Tiny's layers; any other goes through the generic copy), so the four loads of a tap
 * take immediate offsets from one address.
 */
#include <string.h>

#include "tinyc_kernels.h"
#include "tinyc_window.h"

/* acc[4 * i + j] += sum_t row[taps[t] + j * S] * w[4 * t + i]: four columns j of four channels i. */
#define TINYC_BLOCK_4X4(NAME, S)                                                                      \
    TINYC_NOINLINE static void NAME(const int8_t *row, int32_t s, const int32_t *taps, int32_t ntaps,  \
                                    const int8_t *w, int32_t *acc)                                    \
    {                                                                                                 \
        const int32_t *end = taps + ntaps;                                                            \
        (void)s;                                                                                      \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;                       \
        int32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;                       \
        for (; taps != end; taps++, w += 4) {                                                         \
            const int8_t *p = row + *taps;                                                            \
            const int32_t x0 = p[0], x1 = p[S], x2 = p[2 * (S)], x3 = p[3 * (S)];                     \
            int32_t u = w[0];                                                                         \
            a0 += u * x0, a1 += u * x1, a2 += u * x2, a3 += u * x3;                                   \
            u = w[1];                                                                                 \
            b0 += u * x0, b1 += u * x1, b2 += u * x2, b3 += u * x3;                                   \
            u = w[2];                                                                                 \
            c0 += u * x0, c1 += u * x1, c2 += u * x2, c3 += u * x3;                                   \
            u = w[3];                                                                                 \
            d0 += u * x0, d1 += u * x1, d2 += u * x2, d3 += u * x3;                                   \
        }                                                                                             \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = b0, acc[5] = b1, acc[6] = b2;    \
        acc[7] = b3, acc[8] = c0, acc[9] = c1, acc[10] = c2, acc[11] = c3, acc[12] = d0;              \
        acc[13] = d1, acc[14] = d2, acc[15] = d3;                                                     \
    }

/* acc[j] += sum_t row[taps[t] + j * S] * w[step * t]: four columns of one channel (step 1), or of
 * channel i of a block of four (w at its weight, step 4). */
#define TINYC_BLOCK_4X1(NAME, S)                                                                      \
    TINYC_NOINLINE static void NAME(const int8_t *row, int32_t s, const int32_t *taps, int32_t ntaps,  \
                                    const int8_t *w, int32_t step, int32_t *acc)                      \
    {                                                                                                 \
        const int32_t *end = taps + ntaps;                                                            \
        (void)s;                                                                                      \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                       \
        for (; taps != end; taps++, w += step) {                                                      \
            const int8_t *p = row + *taps;                                                            \
            const int32_t u = *w;                                                                     \
            a0 += u * p[0], a1 += u * p[S], a2 += u * p[2 * (S)], a3 += u * p[3 * (S)];               \
        }                                                                                             \
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                           \
    }

/* s is the column stride for the _sn variants; the others have theirs built in */
TINYC_BLOCK_4X4(block_4x4_s1, 1)
TINYC_BLOCK_4X4(block_4x4_s2, 2)
TINYC_BLOCK_4X4(block_4x4_sn, s)
TINYC_BLOCK_4X1(block_4x1_s1, 1)
TINYC_BLOCK_4X1(block_4x1_s2, 2)
TINYC_BLOCK_4X1(block_4x1_sn, s)

/* One output of four channels (the tail of a row): acc[i] = sum_t p[taps[t]] * w[4 * t + i]. */
TINYC_NOINLINE static void block_1x4(const int8_t *p, const int32_t *taps, int32_t ntaps, const int8_t *w,
                                     int32_t *acc)
{
    const int32_t *end = taps + ntaps;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (; taps != end; taps++, w += 4) {
        const int32_t x = p[*taps];
        a0 += x * w[0], a1 += x * w[1], a2 += x * w[2], a3 += x * w[3];
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

static int32_t dot_taps(const int8_t *p, const int32_t *taps, int32_t ntaps, const int8_t *w, int32_t step)
{
    int32_t t, a = 0;
    for (t = 0; t < ntaps; t++)
        a += p[taps[t]] * w[t * step];
    return a;
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
                      int32_t step, int32_t *acc)
{
    if (s == 1)
        block_4x1_s1(row, 1, taps, ntaps, w, step, acc);
    else if (s == 2)
        block_4x1_s2(row, 2, taps, ntaps, w, step, acc);
    else
        block_4x1_sn(row, s, taps, ntaps, w, step, acc);
}

/* One output row of `count` channels (1 or 4) from channel m on, the row's windows at src. */
static void conv_row(const tinyc_qconv_plan *p, const int8_t *src, const int8_t *w, int32_t m, int32_t count,
                     int8_t *y)
{
    const int32_t s = p->sw, plane = p->oh * p->ow, step = count == 4 ? 4 : 1;
    int32_t acc[16], c, i, j;
    for (c = 0; c + 4 <= p->ow; c += 4) {
        if (count == 4)
            block_4x4(s, src + c * s, p->taps, p->ntaps, w, acc);
        else
            block_4x1(s, src + c * s, p->taps, p->ntaps, w, step, acc);
        for (i = 0; i < count; i++)
            for (j = 0; j < 4; j++)
                y[i * plane + c + j] = tinyc_rq32_out(&p->rq, m + i, acc[4 * i + j]);
    }
    for (; c < p->ow; c++) {
        if (count == 4)
            block_1x4(src + c * s, p->taps, p->ntaps, w, acc);
        else
            acc[0] = dot_taps(src + c * s, p->taps, p->ntaps, w, step);
        for (i = 0; i < count; i++)
            y[i * plane + c] = tinyc_rq32_out(&p->rq, m + i, acc[i]);
    }
}

/* Copies the input rows of output rows [r0, r0 + band_rows-worth) of one group into the band, x_zp
 * around them: row b of the band is input row r0 * sh - pad_t + b, at column pad_l. */
static void fill_band(const tinyc_qconv_plan *p, const int8_t *xg, int32_t r0)
{
    const int32_t plane = p->h * p->w, first = r0 * p->sh - p->pad_t;
    int8_t *b = p->band;
    int32_t c, r;
    for (c = 0; c < p->cg; c++)
        for (r = 0; r < p->band_rows; r++, b += p->band_w) {
            const int32_t ih = first + r;
            if (ih < 0 || ih >= p->h) {
                memset(b, p->x_zp, (size_t)p->band_w);
                continue;
            }
            memset(b, p->x_zp, (size_t)p->pad_l);
            memcpy(b + p->pad_l, xg + c * plane + ih * p->w, (size_t)p->w);
            memset(b + p->pad_l + p->w, p->x_zp, (size_t)(p->band_w - p->pad_l - p->w));
        }
}

void tinyc_qconv_plan_s8(const tinyc_qconv_plan *p, const int8_t *x, int8_t *y)
{
    const int32_t plane = p->oh * p->ow, blocks = p->mg / 4 * 4;
    int32_t g, r0, r, m;
    for (g = 0; g < p->groups; g++) {
        const int8_t *xg = x + g * p->cg * p->h * p->w, *wg = p->weights + g * p->mg * p->ntaps;
        int8_t *yg = y + g * p->mg * plane;
        for (r0 = 0; r0 < p->oh; r0 += p->fill_rows) {
            const int32_t rows = tinyc_min(p->fill_rows, p->oh - r0);
            const int8_t *src = p->band ? p->band : xg + r0 * p->sh * p->w;
            const int32_t pitch = p->sh * (p->band ? p->band_w : p->w);
            if (p->band)
                fill_band(p, xg, r0);
            for (m = 0; m < p->mg; m += m < blocks ? 4 : 1) {
                const int32_t count = m < blocks ? 4 : 1;
                const int8_t *wm = wg + m * p->ntaps;
                for (r = 0; r < rows; r++)
                    conv_row(p, src + r * pitch, wm, g * p->mg + m, count, yg + m * plane + (r0 + r) * p->ow);
            }
        }
    }
}

/* acc[j] = sum_i x[i] * w[8 * i + j], eight columns; two inputs per iteration halve the loop's cost. */
TINYC_NOINLINE static void dense_1x8(const int8_t *x, int32_t k, const int8_t *w, int32_t *acc)
{
    const int8_t *end = x + (k & ~1);
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (; x != end; x += 2, w += 16) {
        int32_t u = x[0];
        a0 += u * w[0], a1 += u * w[1], a2 += u * w[2], a3 += u * w[3];
        a4 += u * w[4], a5 += u * w[5], a6 += u * w[6], a7 += u * w[7];
        u = x[1];
        a0 += u * w[8], a1 += u * w[9], a2 += u * w[10], a3 += u * w[11];
        a4 += u * w[12], a5 += u * w[13], a6 += u * w[14], a7 += u * w[15];
    }
    if (k & 1) {
        const int32_t u = x[0];
        a0 += u * w[0], a1 += u * w[1], a2 += u * w[2], a3 += u * w[3];
        a4 += u * w[4], a5 += u * w[5], a6 += u * w[6], a7 += u * w[7];
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7;
}

void tinyc_qdense_plan_s8(const tinyc_qdense_plan *p, const int8_t *x, int8_t *y, int32_t rows)
{
    const int32_t blocks = p->n / 8 * 8;
    int32_t r, j, i, acc[8];
    for (r = 0; r < rows; r++, x += p->k, y += p->n) {
        for (j = 0; j < blocks; j += 8) {
            dense_1x8(x, p->k, p->weights + j * p->k, acc);
            for (i = 0; i < 8; i++)
                y[j + i] = tinyc_rq32_out(&p->rq, j + i, acc[i]);
        }
        for (; j < p->n; j++) {
            const int8_t *w = p->weights + j * p->k;
            int32_t a = 0;
            for (i = 0; i < p->k; i++)
                a += x[i] * w[i];
            y[j] = tinyc_rq32_out(&p->rq, j, a);
        }
    }
}
