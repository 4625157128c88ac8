/* Sliding-window helpers private to the kernels (tinyc_window from tinyc_kernels.h). */
#ifndef TINYC_WINDOW_H
#define TINYC_WINDOW_H

#include "tinyc_kernels.h"

/* For a hot loop's own function: inlined into its caller, it shares RV32's registers with the outer
 * loops and its sums spill to the stack. */
#if defined(__GNUC__)
#define TINYC_NOINLINE __attribute__((noinline))
#else
#define TINYC_NOINLINE
#endif

/* memcpy and memset of n bytes for the short runs kernels move (tinyc_kernels_data.c): picolibc's,
 * built for size, move a byte per loop after a call; these move words where both ends are aligned. */
void tinyc_copy_bytes(void *dst, const void *src, int32_t n);
void tinyc_set_bytes(void *dst, int32_t value, int32_t n);

static inline int32_t tinyc_min(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

/* Input coordinate along spatial dim `d` read by output `o` at kernel offset `k`. */
static inline int32_t tinyc_window_pos(const tinyc_window *g, int32_t d, int32_t o, int32_t k)
{
    return o * g->stride[d] - g->pad[d] + k * g->dilation[d];
}

static inline int32_t tinyc_in_input(const tinyc_window *g, int32_t d, int32_t p)
{
    return p >= 0 && p < g->in[d];
}

/* Inside the declared padding: the positions count_include_pad counts (not the ceil_mode overhang). */
static inline int32_t tinyc_in_padding(const tinyc_window *g, int32_t d, int32_t p)
{
    return p >= -g->pad[d] && p < g->in[d] + g->pad_end[d];
}

/* Kernel offsets [*lo, *hi) of a window starting at input position `pos` (kernel k, dilation dil) that
 * land inside [0, size): the valid taps along one dim, found once per output instead of per tap. Empty
 * (*hi == *lo) for a window wholly in the padding. */
static inline void tinyc_tap_range(int32_t pos, int32_t size, int32_t k, int32_t dil, int32_t *lo, int32_t *hi)
{
    *lo = pos < 0 ? (-pos + dil - 1) / dil : 0;
    *hi = size - pos <= 0 ? 0 : tinyc_min(k, (size - pos + dil - 1) / dil);
    *hi = *hi < *lo ? *lo : *hi;
}

/* Outputs [*lo, *hi) within [o0, o0 + len) whose innermost input o * stride + off lies inside the row:
 * the bounds are hoisted out of the inner loop so that it runs without checks. */
static inline void tinyc_row_range(const tinyc_window *g, int32_t off, int32_t o0, int32_t len, int32_t *lo,
                                   int32_t *hi)
{
    const int32_t s = g->stride[2], w = g->in[2];
    *lo = o0;
    *hi = o0 + len;
    if (o0 * s + off < 0)
        *lo = (-off + s - 1) / s;
    if ((*hi - 1) * s + off >= w)
        *hi = w - off > 0 ? (w - off + s - 1) / s : 0;
}

/* Shared by the float and integer max pools: padding never wins, as the reference pads with LOWEST. */
#define TINYC_MAXPOOL_BODY(T, LOWEST)                                                                 \
    int32_t plane, od, oh, ow, kd, kh, kw;                                                            \
    for (plane = 0; plane < g->n * g->c; plane++) {                                                   \
        const T *xp = x + plane * g->in[0] * g->in[1] * g->in[2];                                     \
        for (od = 0; od < g->out[0]; od++)                                                            \
            for (oh = 0; oh < g->out[1]; oh++)                                                        \
                for (ow = 0; ow < g->out[2]; ow++) {                                                  \
                    T best = LOWEST;                                                                  \
                    for (kd = 0; kd < g->kernel[0]; kd++) {                                           \
                        const int32_t id = tinyc_window_pos(g, 0, od, kd);                            \
                        if (!tinyc_in_input(g, 0, id))                                                \
                            continue;                                                                 \
                        for (kh = 0; kh < g->kernel[1]; kh++) {                                       \
                            const int32_t ih = tinyc_window_pos(g, 1, oh, kh);                        \
                            if (!tinyc_in_input(g, 1, ih))                                            \
                                continue;                                                             \
                            for (kw = 0; kw < g->kernel[2]; kw++) {                                   \
                                const int32_t iw = tinyc_window_pos(g, 2, ow, kw);                    \
                                if (tinyc_in_input(g, 2, iw) && xp[(id * g->in[1] + ih) * g->in[2] + iw] > best) \
                                    best = xp[(id * g->in[1] + ih) * g->in[2] + iw];                  \
                            }                                                                         \
                        }                                                                             \
                    }                                                                                 \
                    *y++ = best;                                                                      \
                }                                                                                     \
    }

#endif
