/* The padded space-to-depth of bytes (a conv's kernel lowered to one the accelerator takes,
 * tinyc/passes/lower_kernel.py), inlined where the model calls it: with the call's constants its
 * gathers load at immediate offsets from one pointer and its loops over blocks unroll. */
#ifndef TINYC_SPACE_TO_DEPTH_H
#define TINYC_SPACE_TO_DEPTH_H

#include <stdint.h>

/* y [c][sh][sw][rows][cols] of bytes: y[ch][i][j][r][q] = xp[ch][r * sh + i][q * sw + j], xp the planes of x
 * (h x w, element (u, v) at u * rs + v * cs: rs = 1, cs = h reads stored planes transposed) padded by
 * top and left, and as far as rows x cols blocks reach, with fill. One pass over the output: each of its
 * rows is a strided gather from one row of xp, eight bytes a loop, between runs of the fill. */
static TINYC_INLINE void tinyc_space_to_depth_pad_b1(const uint8_t *x, uint8_t *y, int32_t c, int32_t h, int32_t w,
                                                     int32_t rs, int32_t cs, int32_t sh, int32_t sw, int32_t rows,
                                                     int32_t cols, int32_t top, int32_t left, int32_t fill)
{
    const int32_t step = sw * cs;
    int32_t ch, i, j, r, k;
    for (ch = 0; ch < c; ch++, x += h * w)
        for (i = 0; i < sh; i++)
            for (j = 0; j < sw; j++) {
                /* the columns q whose v = q * sw + j - left lies in [0, w) */
                const int32_t first = left > j ? (left - j + sw - 1) / sw : 0;
                const int32_t reach = (w + left - j + sw - 1) / sw;
                const int32_t inside = (reach < cols ? reach : cols) - first;
                const uint8_t *row = x + (first * sw + j - left) * cs;
                for (r = 0; r < rows; r++, y += cols) {
                    const int32_t u = r * sh + i - top;
                    const uint8_t *p = row + u * rs;
                    uint8_t *q = y + first, *stop;
                    if (u < 0 || u >= h || inside <= 0) {
                        for (k = 0; k < cols; k++)
                            y[k] = (uint8_t)fill;
                        continue;
                    }
                    for (k = 0; k < first; k++)
                        y[k] = (uint8_t)fill;
                    for (stop = q + (inside & ~7); q != stop; q += 8, p += 8 * step) {
                        const uint8_t b0 = p[0], b1 = p[step], b2 = p[2 * step], b3 = p[3 * step];
                        const uint8_t b4 = p[4 * step], b5 = p[5 * step], b6 = p[6 * step], b7 = p[7 * step];
                        q[0] = b0, q[1] = b1, q[2] = b2, q[3] = b3, q[4] = b4, q[5] = b5, q[6] = b6, q[7] = b7;
                    }
                    for (k = 0; k < (inside & 7); k++)
                        q[k] = p[k * step];
                    for (k = first + inside; k < cols; k++)
                        y[k] = (uint8_t)fill;
                }
            }
}

#endif
