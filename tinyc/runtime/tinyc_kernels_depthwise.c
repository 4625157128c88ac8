/* The planned depthwise 3x3 (tinyc_qconv_plan's inner TINYC_INNER_DEPTHWISE_3X3 and _SMALL): bit-exact
 * with tinyc.ir.interpret under the bounds the planner proves (tinyc/backends/c/plans.py).
 *
 * Its nine weights stay in registers and x is read in place, with no padded copy: the taps that fall in
 * the padding are left out of the MACs and x_zp times their weights added instead, all channels in one
 * call. A plane wider than a few outputs goes row by row, two outputs at a time sharing their loads; a
 * narrower one window by window from descriptors the planner computes, where a row's set-up would cost
 * more than its outputs.
 */
#include "tinyc_kernels.h"
#include "tinyc_window.h"

/* The window of an output at column offset J of rows a, b and c times the nine weights. */
#define TINYC_WINDOW_3X3(J)                                                                           \
    (w0 * a[J] + w1 * a[(J) + 1] + w2 * a[(J) + 2] + w3 * b[J] + w4 * b[(J) + 1] + w5 * b[(J) + 2]     \
     + w6 * c[J] + w7 * c[(J) + 1] + w8 * c[(J) + 2])

/* Rows [r0, r0 + n) of one channel of a depthwise 3x3 (dilation 1, at most one padded row or column on
 * each side) into acc[(r - r0) * ow + j], read straight from the channel's plane x, its nine weights in
 * registers throughout; two outputs at a time share their loads (S = 1: two of each window row's
 * three; S = 2: one). A window row outside the plane reads zrow (x_zp throughout) instead; an output's
 * window column outside it (the first output's left one where clip_l, the last's right one where
 * clip_r) is left out of the MACs and x_zp times its three weights added instead. */
#define TINYC_DEPTHWISE_3X3(NAME, S)                                                                  \
    TINYC_NOINLINE static void NAME(const tinyc_qconv_plan *p, const int8_t *x, const int8_t *zrow,   \
                                    const int8_t *w, int32_t r0, int32_t n, int32_t *acc)             \
    {                                                                                                 \
        const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5];               \
        const int32_t w6 = w[6], w7 = w[7], w8 = w[8];                                                \
        const int32_t left = p->x_zp * (w0 + w3 + w6), right = p->x_zp * (w2 + w5 + w8);             \
        const int32_t width = p->w, inner = p->ow - p->clip_l - p->clip_r, below = p->h - 2;           \
        int32_t top = r0 * p->sh - p->pad_t, *last = acc + n * p->ow;                                 \
        for (; acc != last; top += p->sh) { /* the middle row lies on the plane: pads of one at most */ \
            const int8_t *b = x + (top + 1) * width;                                                  \
            const int8_t *a = top >= 0 ? b - width : zrow, *c = top < below ? b + width : zrow;       \
            int32_t *end;                                                                             \
            if (p->clip_l) {                                                                          \
                *acc++ = w1 * a[0] + w2 * a[1] + w4 * b[0] + w5 * b[1] + w7 * c[0] + w8 * c[1] + left; \
                a += (S) - 1, b += (S) - 1, c += (S) - 1;                                             \
            }                                                                                         \
            for (end = acc + (inner & ~1); acc != end; acc += 2) {                                    \
                const int32_t u = TINYC_WINDOW_3X3(0), v = TINYC_WINDOW_3X3(S);                       \
                acc[0] = u, acc[1] = v;                                                               \
                a += 2 * (S), b += 2 * (S), c += 2 * (S);                                             \
            }                                                                                         \
            if (inner & 1) {                                                                          \
                *acc++ = TINYC_WINDOW_3X3(0);                                                         \
                a += S, b += S, c += S;                                                               \
            }                                                                                         \
            if (p->clip_r)                                                                            \
                *acc++ = w0 * a[0] + w1 * a[1] + w3 * b[0] + w4 * b[1] + w6 * c[0] + w7 * c[1] + right; \
        }                                                                                             \
    }

TINYC_DEPTHWISE_3X3(depthwise_3x3_s1, 1)
TINYC_DEPTHWISE_3X3(depthwise_3x3_s2, 2)

/* A depthwise 3x3 (TINYC_INNER_DEPTHWISE_3X3) in one call, channel after channel with no copy of its
 * input: as many output rows at a time as 4 * TINYC_CHUNK sums hold, requantized together. The band is
 * the row of x_zp that windows read above and below the plane. */
static void depthwise_rows(const tinyc_qconv_plan *p, const int8_t *x, int8_t *y)
{
    const int32_t plane = p->h * p->w, ow = p->ow, per = tinyc_min(p->oh, 4 * TINYC_CHUNK / ow);
    const int8_t *w = p->weights;
    int32_t acc[4 * TINYC_CHUNK], ch, r0;
    tinyc_set_bytes(p->band, p->x_zp, p->w);
    for (ch = 0; ch < p->groups; ch++, x += plane, w += 9)
        for (r0 = 0; r0 < p->oh; r0 += per) {
            const int32_t n = tinyc_min(per, p->oh - r0);
            if (p->sw == 1)
                depthwise_3x3_s1(p, x, p->band, w, r0, n, acc);
            else
                depthwise_3x3_s2(p, x, p->band, w, r0, n, acc);
            tinyc_rq32_run(&p->rq, ch, acc, n * ow, y, 1);
            y += n * ow;
        }
}

/* The taps of one or two window rows P on the plane times their weights. */
#define TINYC_TRIPLE(P, U, V, W) ((U) * (P)[0] + (V) * (P)[1] + (W) * (P)[2])
#define TINYC_PAIR(P, U, V) ((U) * (P)[0] + (V) * (P)[1])

/* A depthwise 3x3 of a small plane (TINYC_INNER_DEPTHWISE_SMALL), channel after channel in one call:
 * output j's window comes as taps[j] = 16 * (the offset of its first tap on the plane) + kind, kind =
 * 3 * rows + columns where rows (columns) is 0 when all three lie on the plane, 1 when the first is off
 * it, 2 when the last is. Its sum takes the taps on the plane only, plus x_zp times the other weights
 * (off[kind]); no row overhead, which on planes a few outputs wide costs more than the outputs. */
static void depthwise_small(const tinyc_qconv_plan *p, const int8_t *x, int8_t *y)
{
    const int32_t plane = p->h * p->w, n = p->oh * p->ow, width = p->w, zp = p->x_zp;
    const int32_t *windows = p->taps, *last = windows + n;
    const int8_t *w = p->weights;
    int32_t acc[4 * TINYC_CHUNK], off[9] = {0}, ch;
    for (ch = 0; ch < p->groups; ch++, x += plane, w += 9, y += n) {
        const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5];
        const int32_t w6 = w[6], w7 = w[7], w8 = w[8];
        const int32_t *d;
        int32_t *out = acc;
        if (zp) { /* (with x_zp 0, as after a ReLU, the taps off the plane add nothing) */
            const int32_t top = w0 + w1 + w2, bottom = w6 + w7 + w8, left = w0 + w3 + w6, right = w2 + w5 + w8;
            off[1] = zp * left, off[2] = zp * right, off[3] = zp * top, off[4] = zp * (top + left - w0);
            off[5] = zp * (top + right - w2), off[6] = zp * bottom, off[7] = zp * (bottom + left - w6);
            off[8] = zp * (bottom + right - w8);
        }
        for (d = windows; d != last; d++) {
            const int8_t *a = x + (*d >> 4), *b = a + width;
            switch (*d & 15) {
            case 0:
                *out++ = TINYC_TRIPLE(a, w0, w1, w2) + TINYC_TRIPLE(b, w3, w4, w5) + TINYC_TRIPLE(b + width, w6, w7, w8);
                break;
            case 1:
                *out++ = TINYC_PAIR(a, w1, w2) + TINYC_PAIR(b, w4, w5) + TINYC_PAIR(b + width, w7, w8) + off[1];
                break;
            case 2:
                *out++ = TINYC_PAIR(a, w0, w1) + TINYC_PAIR(b, w3, w4) + TINYC_PAIR(b + width, w6, w7) + off[2];
                break;
            case 3:
                *out++ = TINYC_TRIPLE(a, w3, w4, w5) + TINYC_TRIPLE(b, w6, w7, w8) + off[3];
                break;
            case 4:
                *out++ = TINYC_PAIR(a, w4, w5) + TINYC_PAIR(b, w7, w8) + off[4];
                break;
            case 5:
                *out++ = TINYC_PAIR(a, w3, w4) + TINYC_PAIR(b, w6, w7) + off[5];
                break;
            case 6:
                *out++ = TINYC_TRIPLE(a, w0, w1, w2) + TINYC_TRIPLE(b, w3, w4, w5) + off[6];
                break;
            case 7:
                *out++ = TINYC_PAIR(a, w1, w2) + TINYC_PAIR(b, w4, w5) + off[7];
                break;
            default:
                *out++ = TINYC_PAIR(a, w0, w1) + TINYC_PAIR(b, w3, w4) + off[8];
            }
        }
        tinyc_rq32_run(&p->rq, ch, acc, n, y, 1);
    }
}

void tinyc_qconv_depthwise_s8(const tinyc_qconv_plan *p, const int8_t *x, int8_t *y)
{
    if (p->inner == TINYC_INNER_DEPTHWISE_SMALL)
        depthwise_small(p, x, y);
    else
        depthwise_rows(p, x, y);
}
