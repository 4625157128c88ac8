/* The global average pool (a window that is its whole plane, the last pool of every MLPerf Tiny conv
 * network), inlined where the model calls it: the call's constants (plane size, clip bounds) unroll a
 * plane's sum, fix its word loop's trip count, make the rounding's division one by a constant and drop
 * a clip to [-128, 127]. Bit-exact with tinyc.ir.interpret's
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
#define TINYC_UNROLL_FOUR _Pragma("GCC unroll 4")
#else
#define TINYC_UNROLL_SHORT
#define TINYC_UNROLL_FOUR
#endif

/* TFLite's rounded average of a plane's total t over its n values (half away from zero, then C's
 * truncating division), clipped. t + 256 n + n / 2 is positive (t >= -128 n), so its unsigned quotient
 * floors: that is t's average rounded half up, less one at a negative tie of an even n (its ties round
 * down), lifted by 256, which the low byte kept does not see. With lo and hi constants a clip to
 * [-128, 127] (where every average of int8 lies) drops out. */
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

#define TINYC_FLIP 0x80808080u /* each byte's top bit: int8 + 128, unsigned */
#define TINYC_EVEN 0x00FF00FFu

/* Adds `words` aligned words of int8 into the lanes: each byte biased to unsigned (its top bit
 * flipped: value + 128), the even bytes summed in the two 16-bit lanes of *a (S0, S2), w >> 8 summed
 * whole in *b (S1 + S2 * 2**8 + S3 * 2**16), so S2 = a >> 16 takes b apart (tinyc_lanes_total). Six
 * instructions a word (a load, the flip, a mask, a shift, two adds) where a byte at a time takes eight.
 * Lanes summing at most 256 bytes each (up to 256 words, or a plane of up to 1024 bytes split across
 * words) keep every S_i <= 255 * 256, so b < 2**32. With `nonnegative` (every byte proven in [0, 127], as
 * after a ReLU) nothing is flipped and two words add bytewise first, their bytes <= 254 carrying into
 * no neighbour: seven instructions for two words. */
static TINYC_INLINE void tinyc_word_lanes(const tinyc_word *p, int32_t words, uint32_t *a, uint32_t *b,
                                          int32_t nonnegative)
{
    const tinyc_word *end = p + words;
    uint32_t w;
    if (nonnegative) { /* an odd word, an odd pair, then two pairs at a time */
        if (words & 1)
            w = *p++, *a += w & TINYC_EVEN, *b += w >> 8;
        if (words & 2)
            w = p[0] + p[1], p += 2, *a += w & TINYC_EVEN, *b += w >> 8;
        if (p == end)
            return;
        TINYC_UNROLL_FOUR
        do {
            const uint32_t w01 = p[0] + p[1], w23 = p[2] + p[3];
            *a += (w01 & TINYC_EVEN) + (w23 & TINYC_EVEN);
            *b += (w01 >> 8) + (w23 >> 8);
            p += 4;
        } while (p != end);
        return;
    }
    switch (words & 3) { /* the odd words first, then four at a time */
    case 3: w = *p++ ^ TINYC_FLIP, *a += w & TINYC_EVEN, *b += w >> 8; /* fallthrough */
    case 2: w = *p++ ^ TINYC_FLIP, *a += w & TINYC_EVEN, *b += w >> 8; /* fallthrough */
    case 1: w = *p++ ^ TINYC_FLIP, *a += w & TINYC_EVEN, *b += w >> 8; /* fallthrough */
    default: break;
    }
    if (p == end)
        return;
    TINYC_UNROLL_FOUR
    do {
        const uint32_t w0 = p[0] ^ TINYC_FLIP, w1 = p[1] ^ TINYC_FLIP, w2 = p[2] ^ TINYC_FLIP,
                       w3 = p[3] ^ TINYC_FLIP;
        *a += (w0 & TINYC_EVEN) + (w1 & TINYC_EVEN) + (w2 & TINYC_EVEN) + (w3 & TINYC_EVEN);
        *b += (w0 >> 8) + (w1 >> 8) + (w2 >> 8) + (w3 >> 8);
        p += 4;
    } while (p != end);
}

/* S0 + S1 + S2 + S3 of the lanes. */
static TINYC_INLINE int32_t tinyc_lanes_total(uint32_t a, uint32_t b)
{
    const uint32_t s2 = a >> 16, r = b - (s2 << 8); /* r = S1 + S3 * 2**16 */
    return (int32_t)((a & 0xFFFFu) + s2 + (r & 0xFFFFu) + (r >> 16));
}

/* The sum of `words` aligned words of int8, 0 < words <= TINYC_WORD_RUN (nonnegative: tinyc_word_lanes). */
static TINYC_INLINE int32_t tinyc_word_run_sum(const tinyc_word *p, int32_t words, int32_t nonnegative)
{
    uint32_t a = 0, b = 0;
    tinyc_word_lanes(p, words, &a, &b, nonnegative);
    return tinyc_lanes_total(a, b) - (nonnegative ? 0 : 512 * words);
}

/* Four planes of n = 4 k + r (0 < r, n < 4 * TINYC_WORD_RUN) from an aligned x: n whole words, plane j's
 * bytes [j n, j n + n). The word a plane ends in is split by a mask, its low bytes into that plane's
 * lanes and its high ones into the next plane's, so no byte is loaded alone. With n constant every
 * index and mask is. */
static TINYC_INLINE void tinyc_four_planes(const int8_t *x, int8_t *y, int32_t n, int32_t lo, int32_t hi,
                                           int32_t nonnegative)
{
    const uint32_t flip = nonnegative ? 0u : TINYC_FLIP;
    const tinyc_word *w = (const tinyc_word *)(const void *)x;
    uint32_t a = 0, b = 0, u = 0, low = 0;
    int32_t j;
    TINYC_UNROLL_FOUR
    for (j = 0; j < 4; j++) {
        const int32_t first = (j * n + 3) / 4, last = (j * n + n) / 4, cut = (j * n + n) % 4;
        tinyc_word_lanes(w + first, last - first, &a, &b, nonnegative);
        if (cut != 0) {
            u = w[last] ^ flip;
            low = u & ((1u << 8 * cut) - 1u);
            a += low & TINYC_EVEN, b += low >> 8;
        }
        y[j] = tinyc_plane_average(tinyc_lanes_total(a, b) - (nonnegative ? 0 : 128 * n), n, lo, hi);
        a = b = 0;
        if (cut != 0)
            u ^= low, a = u & TINYC_EVEN, b = u >> 8;
    }
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
static TINYC_INLINE int32_t tinyc_long_plane_sum(const int8_t *x, int32_t n, int32_t nonnegative)
{
    const int32_t head = (int32_t)(-(uintptr_t)x & 3u), rest = n - head;
    int32_t t = tinyc_bytes_sum(x, head), words = rest >> 2;
    x += head;
    for (; words > TINYC_WORD_RUN; words -= TINYC_WORD_RUN, x += 4 * TINYC_WORD_RUN)
        t += tinyc_word_run_sum((const tinyc_word *)(const void *)x, TINYC_WORD_RUN, nonnegative);
    t += tinyc_word_run_sum((const tinyc_word *)(const void *)x, words, nonnegative);
    return t + tinyc_bytes_sum(x + 4 * words, rest & 3);
}

/* The sum of n > 0 int8 from x (a plane of any size, n not a constant: tinyc_global_avgpool_requant_s8). */
static TINYC_INLINE int32_t tinyc_plane_sum(const int8_t *x, int32_t n)
{
    int32_t t = 0, i;
    if (n > TINYC_SHORT_PLANE)
        return tinyc_long_plane_sum(x, n, 0);
    for (i = 0; i < n; i++)
        t += x[i];
    return t;
}

/* y[p] = the rounded average of the n values of plane p (x[p * n ... p * n + n - 1]), clipped to
 * [lo, hi]; n <= 2**22 (the emitter checks), so t + 256 n + n / 2 fits int32. Planes of a multiple of
 * four from an aligned x are all aligned: their word count is then the constant n / 4. nonnegative: every
 * value of x is in [0, 127] (the compiler proves it, tinyc.ir.ranges), which the word sums use. */
static TINYC_INLINE void tinyc_global_avgpool_s8(const int8_t *x, int8_t *y, int32_t planes, int32_t n, int32_t lo,
                                                 int32_t hi, int32_t nonnegative)
{
    const int8_t *end = x + planes * n;
    int32_t i, t, u;
    if (planes == 0)
        return;
    if (n <= TINYC_SHORT_PLANE) {
        for (; planes >= 2; planes -= 2, x += 2 * n, y += 2) { /* two planes a loop: half the loop's steps */
            t = 0, u = 0;
            TINYC_UNROLL_SHORT
            for (i = 0; i < n; i++)
                t += x[i], u += x[n + i];
            y[0] = tinyc_plane_average(t, n, lo, hi);
            y[1] = tinyc_plane_average(u, n, lo, hi);
        }
        if (planes != 0) {
            t = 0;
            TINYC_UNROLL_SHORT
            for (i = 0; i < n; i++)
                t += x[i];
            *y = tinyc_plane_average(t, n, lo, hi);
        }
    } else if (n % 4 == 0 && n <= 4 * TINYC_WORD_RUN && ((uintptr_t)x & 3) == 0) {
        do {
            t = tinyc_word_run_sum((const tinyc_word *)(const void *)x, n / 4, nonnegative);
            *y++ = tinyc_plane_average(t, n, lo, hi);
            x += n;
        } while (x != end);
    } else {
        if (n < 4 * TINYC_WORD_RUN && ((uintptr_t)x & 3) == 0)
            for (; planes >= 4; planes -= 4, x += 4 * n, y += 4)
                tinyc_four_planes(x, y, n, lo, hi, nonnegative);
        for (; x != end; x += n)
            *y++ = tinyc_plane_average(tinyc_long_plane_sum(x, n, nonnegative), n, lo, hi);
    }
}

#endif
