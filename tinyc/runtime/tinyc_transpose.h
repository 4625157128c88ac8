/* The 2-D byte transpose of planes a multiple of four on each side (a lowered global pool's windows,
 * tinyc/passes/lower_global_pool.py), inlined where the model calls it: with the call's constants its
 * loads and stores take immediate offsets. tinyc_transpose uses it for such planes too. */
#ifndef TINYC_TRANSPOSE_H
#define TINYC_TRANSPOSE_H

#include <stdint.h>

/* y[r][c] = x[c][r] of bytes, y [rows][cols] and x's rows `pitch` bytes apart, everything a multiple of
 * four and aligned: blocks of 4 x 4, four words loaded and their bytes dealt to four output rows (on a
 * big-endian host, byte by byte). */
static TINYC_INLINE void tinyc_transpose_4x4_b1(const uint8_t *x, uint8_t *y, int32_t rows, int32_t cols,
                                                int32_t pitch)
{
    int32_t r, c;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (c = 0; c < cols; c += 4) {
        const uint8_t *p = x + c * pitch;
        uint8_t *q = y + c;
        for (r = 0; r < rows; r += 4, p += 4, q += 4 * cols) {
            const uint32_t w0 = *(const tinyc_word *)(const void *)p;
            const uint32_t w1 = *(const tinyc_word *)(const void *)(p + pitch);
            const uint32_t w2 = *(const tinyc_word *)(const void *)(p + 2 * pitch);
            const uint32_t w3 = *(const tinyc_word *)(const void *)(p + 3 * pitch);
            uint8_t *const q1 = q + cols, *const q2 = q1 + cols, *const q3 = q2 + cols;
            q[0] = (uint8_t)w0, q[1] = (uint8_t)w1, q[2] = (uint8_t)w2, q[3] = (uint8_t)w3;
            q1[0] = (uint8_t)(w0 >> 8), q1[1] = (uint8_t)(w1 >> 8), q1[2] = (uint8_t)(w2 >> 8);
            q1[3] = (uint8_t)(w3 >> 8);
            q2[0] = (uint8_t)(w0 >> 16), q2[1] = (uint8_t)(w1 >> 16), q2[2] = (uint8_t)(w2 >> 16);
            q2[3] = (uint8_t)(w3 >> 16);
            q3[0] = (uint8_t)(w0 >> 24), q3[1] = (uint8_t)(w1 >> 24), q3[2] = (uint8_t)(w2 >> 24);
            q3[3] = (uint8_t)(w3 >> 24);
        }
    }
#else
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++)
            y[r * cols + c] = x[c * pitch + r];
#endif
}

#endif
