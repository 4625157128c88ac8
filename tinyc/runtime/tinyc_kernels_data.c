/* Data movement for any dtype. The emitter merges every run of dims both sides walk contiguously, so
 * the loops here see few, long dims. picolibc's memcpy and memset, built for size, move a byte per
 * loop after a call: short runs are moved inline, words where both ends are aligned. */
#include <string.h>

#include "tinyc_kernels.h"
#include "tinyc_window.h"

/* GCC turns the zeroing and filling loops here back into the memset and memcpy calls they avoid. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

/* The last n < 8 bytes of a copy. */
static TINYC_INLINE void copy_tail(uint8_t *q, const uint8_t *p, int32_t n)
{
    if (n & 4) {
        const uint8_t a = p[0], b = p[1], c = p[2], d = p[3];
        q[0] = a, q[1] = b, q[2] = c, q[3] = d;
        q += 4, p += 4;
    }
    if (n & 2) {
        const uint8_t a = p[0], b = p[1];
        q[0] = a, q[1] = b;
        q += 2, p += 2;
    }
    if (n & 1)
        *q = *p;
}

static TINYC_INLINE void copy_inline(uint8_t *q, const uint8_t *p, int32_t n)
{
    const uint8_t *end;
    if ((((uintptr_t)q | (uintptr_t)p) & 3) == 0 && n >= 4) {
        end = p + (n & ~3);
        do {
            *(tinyc_word *)(void *)q = *(const tinyc_word *)(const void *)p;
            q += 4, p += 4;
        } while (p != end);
        n &= 3;
    } else if (n >= 8) { /* eight bytes a loop: the loads first, so no store waits on a load */
        end = p + (n & ~7);
        do {
            const uint8_t a = p[0], b = p[1], c = p[2], d = p[3], e = p[4], f = p[5], g = p[6], h = p[7];
            q[0] = a, q[1] = b, q[2] = c, q[3] = d, q[4] = e, q[5] = f, q[6] = g, q[7] = h;
            q += 8, p += 8;
        } while (p != end);
    }
    copy_tail(q, p, n & 7);
}

static TINYC_INLINE void set_inline(uint8_t *q, int32_t value, int32_t n)
{
    if (n >= 8) {
        const uint32_t word = (uint8_t)value * 0x01010101u;
        uint8_t *end;
        for (; ((uintptr_t)q & 3) != 0; n--)
            *q++ = (uint8_t)value;
        end = q + (n & ~3);
        do {
            *(tinyc_word *)(void *)q = word;
            q += 4;
        } while (q != end);
        n &= 3;
    }
    for (; n > 0; n--)
        *q++ = (uint8_t)value;
}

void tinyc_copy_bytes(void *dst, const void *src, int32_t n)
{
    copy_inline((uint8_t *)dst, (const uint8_t *)src, n);
}

void tinyc_set_bytes(void *dst, int32_t value, int32_t n)
{
    set_inline((uint8_t *)dst, value, n);
}

/* count elements of elem_size bytes equal to *value from q on. */
static TINYC_INLINE void fill(uint8_t *q, const uint8_t *value, int32_t elem_size, int32_t count)
{
    int32_t i;
    if (elem_size == 1) {
        set_inline(q, value[0], count);
        return;
    }
    for (i = 0; i < count; i++, q += elem_size)
        tinyc_copy_bytes(q, value, elem_size);
}

/* y[k] = x[k * step] for k < n, bytes, four a loop (the loads first, so no store waits on one); its own
 * function, so that its callers' loops keep their registers. */
TINYC_NOINLINE static void gather_b1(uint8_t *y, const uint8_t *x, int32_t n, int32_t step)
{
    uint8_t *const stop = y + (n & ~3), *const end = y + n;
    if (y != stop) {
        const uint8_t *x1 = x + step, *x2 = x1 + step, *x3 = x2 + step;
        const int32_t four = 4 * step;
        do {
            const uint8_t a = *x, b = *x1, c = *x2, d = *x3;
            y[0] = a, y[1] = b, y[2] = c, y[3] = d;
            y += 4, x += four, x1 += four, x2 += four, x3 += four;
        } while (y != stop);
    }
    for (; y != end; y++, x += step)
        *y = *x;
}

/* y[j] = x[j * s] for j < len, elements of elem_size bytes. */
static void gather(uint8_t *q, const uint8_t *p, int32_t len, int32_t s, int32_t elem_size)
{
    const uint8_t *const end = q + (int64_t)len * elem_size;
    const int32_t step = s * elem_size;
    switch (elem_size) {
    case 1:
        gather_b1(q, p, len, step);
        break;
    case 2:
        for (; q != end; q += 2, p += step)
            *(tinyc_half *)(void *)q = *(const tinyc_half *)(const void *)p;
        break;
    case 4:
        for (; q != end; q += 4, p += step)
            *(tinyc_word *)(void *)q = *(const tinyc_word *)(const void *)p;
        break;
    default:
        for (; q != end; q += elem_size, p += step)
            tinyc_copy_bytes(q, p, elem_size);
    }
}

void tinyc_transpose(const void *x, void *y, int32_t elem_size, int32_t ndim, const int32_t *out_shape,
                     const int32_t *in_stride)
{
    const int32_t last = ndim - 1, len = out_shape[last], s = in_stride[last];
    int32_t count = 1, idx[TINYC_MAX_DIMS], off = 0, t, d;
    uint8_t *q = (uint8_t *)y;
    if (elem_size == 1 && ndim == 2 && in_stride[0] == 1 && ((out_shape[0] | len | s | (int32_t)(uintptr_t)x
                                                               | (int32_t)(uintptr_t)y) & 3) == 0) {
        tinyc_transpose_4x4_b1((const uint8_t *)x, q, out_shape[0], len, s); /* its own byte order test */
        return;
    }
    for (t = 0; t < last; t++)
        count *= out_shape[t], idx[t] = 0;
    for (t = 0; t < count; t++, q += (int64_t)len * elem_size) {
        gather(q, (const uint8_t *)x + (int64_t)off * elem_size, len, s, elem_size);
        for (d = last - 1; d >= 0; d--) {
            off += in_stride[d];
            if (++idx[d] < out_shape[d])
                break;
            off -= in_stride[d] * out_shape[d];
            idx[d] = 0;
        }
    }
}

/* x [h][bh][w][bw] -> y [bh][bw][h][w] of bytes: a space-to-depth by blocks of bh x bw. Each input
 * row of w blocks is dealt out to bw output rows; for blocks of two, a word of four input bytes gives
 * two bytes to each (little-endian hosts, aligned rows). */
void tinyc_space_to_depth_b1(const uint8_t *x, uint8_t *y, int32_t h, int32_t bh, int32_t w, int32_t bw)
{
    const int32_t plane = h * w, row = w * bw;
    int32_t r, a, b;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (bw == 2 && (w & 1) == 0 && ((uintptr_t)x & 3) == 0) { /* every row aligned: words, plane by plane */
        for (a = 0; a < bh; a++) {
            uint8_t *q0 = y + 2 * a * plane, *q1 = q0 + plane;
            const uint8_t *p = x + a * row;
            for (r = 0; r < h; r++, p += (bh - 1) * row) {
                const uint8_t *const stop = p + row;
                do {
                    const uint32_t v = *(const tinyc_word *)(const void *)p;
                    q0[0] = (uint8_t)v, q1[0] = (uint8_t)(v >> 8);
                    q0[1] = (uint8_t)(v >> 16), q1[1] = (uint8_t)(v >> 24);
                    p += 4, q0 += 2, q1 += 2;
                } while (p != stop);
            }
        }
        return;
    }
#endif
    for (r = 0; r < h; r++)
        for (a = 0; a < bh; a++)
            for (b = 0; b < bw; b++)
                gather(y + (a * bw + b) * plane + r * w, x + (r * bh + a) * row + b, w, bw, 1);
}

void tinyc_copy_rows(const void *x, void *y, int32_t rows, int32_t row_bytes, int32_t y_stride)
{
    const uint8_t *p = (const uint8_t *)x;
    uint8_t *q = (uint8_t *)y;
    const int32_t eights = row_bytes & ~7, rest = row_bytes & 7;
    if ((((uintptr_t)p | (uintptr_t)q | (uint32_t)row_bytes | (uint32_t)y_stride) & 3) != 0 && eights > 0) {
        /* rows of unaligned bytes: eight a loop, the test of alignment and length once */
        for (; rows > 0; rows--, p += row_bytes, q += y_stride) {
            const uint8_t *from = p, *const end = p + eights;
            uint8_t *to = q;
            do {
                const uint8_t a = from[0], b = from[1], c = from[2], d = from[3];
                const uint8_t e = from[4], f = from[5], g = from[6], h = from[7];
                to[0] = a, to[1] = b, to[2] = c, to[3] = d, to[4] = e, to[5] = f, to[6] = g, to[7] = h;
                to += 8, from += 8;
            } while (from != end);
            copy_tail(to, from, rest);
        }
        return;
    }
    for (; rows > 0; rows--, p += row_bytes, q += y_stride)
        copy_inline(q, p, row_bytes);
}

/* The input index an output index i - pad_begin reads, or -1 where the constant fills. Reflection is
 * periodic (period 2 (n - 1)), which is what numpy's repeated reflection gives for wide pads. */
static int32_t pad_source(int32_t i, int32_t n, int32_t mode)
{
    int32_t period;
    if (i >= 0 && i < n)
        return i;
    if (mode == TINYC_PAD_CONSTANT)
        return -1;
    if (mode == TINYC_PAD_EDGE || n == 1)
        return i < 0 ? 0 : n - 1;
    period = 2 * (n - 1);
    i %= period;
    i += i < 0 ? period : 0;
    return i < n ? i : period - i;
}

/* Output elements [from, to) of a row (input row p of n elements, pb before it) outside the input. */
TINYC_NOINLINE static void pad_edges(uint8_t *q, const uint8_t *p, int32_t from, int32_t to, int32_t n, int32_t pb,
                      int32_t elem_size, int32_t mode, const uint8_t *value)
{
    int32_t j, src;
    if (mode == TINYC_PAD_CONSTANT) {
        fill(q + (int64_t)from * elem_size, value, elem_size, to - from);
        return;
    }
    for (j = from; j < to; j++) {
        src = pad_source(j - pb, n, mode);
        tinyc_copy_bytes(q + (int64_t)j * elem_size, p + (int64_t)src * elem_size, elem_size);
    }
}

/* One plane of a constant pad: rows input rows of n elements into rows of len, pb before each, top
 * rows before them and bottom after. */
TINYC_NOINLINE static void pad_plane(uint8_t *q, const uint8_t *p, int32_t rows, int32_t n, int32_t len, int32_t pb,
                                     int32_t top, int32_t bottom, int32_t elem_size, const uint8_t *value)
{
    const int32_t lead = pb * elem_size, width = n * elem_size, row = len * elem_size;
    int32_t r;
    if (elem_size == 1) { /* one fill of the plane, then the rows: fewer loops than three runs a row */
        tinyc_set_bytes(q, value[0], (top + rows + bottom) * len);
        tinyc_copy_rows(p, q + top * len + lead, rows, width, len);
        return;
    }
    fill(q, value, elem_size, top * len);
    for (r = 0, q += top * row; r < rows; r++, p += width, q += row) {
        fill(q, value, elem_size, pb);
        copy_inline(q + lead, p, width);
        fill(q + lead + width, value, elem_size, len - pb - n);
    }
    fill(q, value, elem_size, bottom * len);
}

void tinyc_pad(const void *x, void *y, int32_t elem_size, int32_t ndim, const int32_t *in_shape,
               const int32_t *out_shape, const int32_t *pad_begin, int32_t mode, const void *value)
{
    const int32_t last = ndim - 1, len = out_shape[last], n = in_shape[last], pb = pad_begin[last];
    const int32_t row = len * elem_size;
    int32_t stride[TINYC_MAX_DIMS], idx[TINYC_MAX_DIMS], count = 1, t, d;
    uint8_t *q = (uint8_t *)y;
    const uint8_t *v = (const uint8_t *)value;
    stride[last] = 1;
    for (d = last - 1; d >= 0; d--)
        stride[d] = stride[d + 1] * in_shape[d + 1], idx[d] = 0;
    if (mode == TINYC_PAD_CONSTANT) { /* plane by plane: the last two dims */
        const int32_t rows = ndim > 1 ? in_shape[last - 1] : 1, out_rows = ndim > 1 ? out_shape[last - 1] : 1;
        const int32_t top = ndim > 1 ? pad_begin[last - 1] : 0, planes_dims = ndim > 1 ? last - 1 : 0;
        for (t = 0; t < planes_dims; t++)
            count *= out_shape[t];
        for (t = 0; t < count; t++, q += (int64_t)out_rows * row) {
            int32_t off = 0, src = 0;
            for (d = 0; d < planes_dims && src >= 0; d++) {
                src = pad_source(idx[d] - pad_begin[d], in_shape[d], mode);
                off += src * stride[d];
            }
            if (src < 0)
                fill(q, v, elem_size, out_rows * len);
            else
                pad_plane(q, (const uint8_t *)x + (int64_t)off * elem_size, rows, n, len, pb, top,
                          out_rows - rows - top, elem_size, v);
            for (d = planes_dims - 1; d >= 0; d--) {
                if (++idx[d] < out_shape[d])
                    break;
                idx[d] = 0;
            }
        }
        return;
    }
    for (t = 0; t < last; t++)
        count *= out_shape[t];
    for (t = 0; t < count; t++, q += row) { /* reflect and edge: row by row */
        int32_t off = 0;
        for (d = 0; d < last; d++)
            off += pad_source(idx[d] - pad_begin[d], in_shape[d], mode) * stride[d];
        {
            const uint8_t *p = (const uint8_t *)x + (int64_t)off * elem_size;
            pad_edges(q, p, 0, pb, n, pb, elem_size, mode, v);
            copy_inline(q + (int64_t)pb * elem_size, p, n * elem_size);
            pad_edges(q, p, pb + n, len, n, pb, elem_size, mode, v);
        }
        for (d = last - 1; d >= 0; d--) {
            if (++idx[d] < out_shape[d])
                break;
            idx[d] = 0;
        }
    }
}
