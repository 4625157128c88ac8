/* The global average pool (a window that is its whole plane, the last pool of every MLPerf Tiny conv
 * network), inlined where the model calls it: the call's constants (plane size, clip bounds) unroll a
 * plane's sum and fold the rounding's division and the clip. Bit-exact with tinyc.ir.interpret's
 * qavgpool, whose planes here have no padding (x_zp and count_include_pad do not enter). */
#ifndef TINYC_POOL_H
#define TINYC_POOL_H

#include <stdint.h>

/* Planes of up to this many values are summed a load and an add each; longer ones four a word load. */
#define TINYC_SHORT_PLANE 16
/* The words a run of word sums takes before its 16-bit lanes are folded (each lane <= 255 * 256). */
#define TINYC_WORD_RUN 256

#if defined(__GNUC__) && !defined(__clang__)
#define TINYC_UNROLL_SHORT _Pragma("GCC unroll 16")
#define TINYC_UNROLL_WORDS _Pragma("GCC unroll 4")
typedef uint32_t __attribute__((may_alias)) tinyc_pool_word;
#else
#define TINYC_UNROLL_SHORT
#define TINYC_UNROLL_WORDS
typedef uint32_t tinyc_pool_word;
#endif

/* TFLite's rounded average of a plane's total t over its n values (half away from zero, then C's
 * truncating division), clipped. t + 256 n + n / 2 is positive (t >= -128 n), so its unsigned quotient
 * floors: that is t's average rounded half up, less one at a negative tie of an even n (its ties round
 * down), lifted by 256, which the low byte kept does not see. With n, lo and hi constants the division
 * is folded and the clip to [-128, 127] (where every average of int8 lies) drops out. */
static TINYC_INLINE int8_t tinyc_plane_average(int32_t t, int32_t n, int32_t lo, int32_t hi)
{
    const uint32_t lifted = (uint32_t)(t + 256 * n + n / 2) - (n % 2 == 0 ? (uint32_t)t >> 31 : 0u);
    int32_t average = (int32_t)(lifted / (uint32_t)n) - 256;
    if (lo > -128 && average < lo)
        average = lo;
    if (hi < 127 && average > hi)
        average = hi;
    return (int8_t)average;
}

/* The sum of `words` aligned words of int8, 0 < words <= TINYC_WORD_RUN: each byte biased to unsigned
 * (its top bit flipped: value + 128), the even bytes summed in the two 16-bit lanes of a (S0, S2), w >> 8
 * summed whole in b (S1 + S2 * 2**8 + S3 * 2**16 < 2**32), so S2 = a >> 16 takes b apart. Six
 * instructions a word (a load, the flip, a mask, a shift, two adds) where a byte at a time takes eight. */
static TINYC_INLINE int32_t tinyc_word_run_sum(const tinyc_pool_word *p, int32_t words)
{
    const uint32_t flip = 0x80808080u, even = 0x00FF00FFu;
    const tinyc_pool_word *end = p + words;
    uint32_t a = 0, b = 0, w, s2, r;
    switch (words & 3) { /* the odd words first, then four at a time */
    case 3: w = *p++ ^ flip, a += w & even, b += w >> 8; /* fallthrough */
    case 2: w = *p++ ^ flip, a += w & even, b += w >> 8; /* fallthrough */
    case 1: w = *p++ ^ flip, a += w & even, b += w >> 8; /* fallthrough */
    default: break;
    }
    if (p != end) {
        TINYC_UNROLL_WORDS
        do {
            const uint32_t w0 = p[0] ^ flip, w1 = p[1] ^ flip, w2 = p[2] ^ flip, w3 = p[3] ^ flip;
            a += (w0 & even) + (w1 & even) + (w2 & even) + (w3 & even);
            b += (w0 >> 8) + (w1 >> 8) + (w2 >> 8) + (w3 >> 8);
            p += 4;
        } while (p != end);
    }
    s2 = a >> 16;
    r = b - (s2 << 8); /* S1 + S3 * 2**16 */
    return (int32_t)((a & 0xFFFFu) + s2 + (r & 0xFFFFu) + (r >> 16)) - 512 * words;
}

/* The sum of the k < 4 int8 from x. */
static TINYC_INLINE int32_t tinyc_bytes_sum(const int8_t *x, int32_t k)
{
    int32_t t = 0;
    switch (k) {
    case 3: t += x[2]; /* fallthrough */
    case 2: t += x[1]; /* fallthrough */
    case 1: t += x[0]; /* fallthrough */
    default: break;
    }
    return t;
}

/* The sum of n > TINYC_SHORT_PLANE int8 from x: the bytes up to a word boundary, whole words in runs
 * (no load past the end, none unaligned), then the last bytes. */
static TINYC_INLINE int32_t tinyc_long_plane_sum(const int8_t *x, int32_t n)
{
    const int32_t head = (int32_t)(-(uintptr_t)x & 3u), rest = n - head;
    int32_t t = tinyc_bytes_sum(x, head), words = rest >> 2;
    x += head;
    for (; words > TINYC_WORD_RUN; words -= TINYC_WORD_RUN, x += 4 * TINYC_WORD_RUN)
        t += tinyc_word_run_sum((const tinyc_pool_word *)(const void *)x, TINYC_WORD_RUN);
    t += tinyc_word_run_sum((const tinyc_pool_word *)(const void *)x, words);
    return t + tinyc_bytes_sum(x + 4 * words, rest & 3);
}

/* y[p] = the rounded average of the n values of plane p (x[p * n ... p * n + n - 1]), clipped to
 * [lo, hi]; n <= 2**22 (the emitter checks), so t + 256 n + n / 2 fits int32. Planes of a multiple of
 * four from an aligned x are all aligned: their word count is then the constant n / 4. */
static TINYC_INLINE void tinyc_global_avgpool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t n, int32_t lo,
                                                 int32_t hi)
{
    const int8_t *end = x + planes * n;
    int32_t i, t;
    if (planes == 0)
        return;
    if (n <= TINYC_SHORT_PLANE) {
        do {
            t = 0;
            TINYC_UNROLL_SHORT
            for (i = 0; i < n; i++)
                t += x[i];
            *y++ = tinyc_plane_average(t, n, lo, hi);
            x += n;
        } while (x != end);
    } else if (n % 4 == 0 && n <= 4 * TINYC_WORD_RUN && ((uintptr_t)x & 3) == 0) {
        do {
            *y++ = tinyc_plane_average(tinyc_word_run_sum((const tinyc_pool_word *)(const void *)x, n / 4), n, lo, hi);
            x += n;
        } while (x != end);
    } else {
        do {
            *y++ = tinyc_plane_average(tinyc_long_plane_sum(x, n), n, lo, hi);
            x += n;
        } while (x != end);
    }
}

#endif
