/* Data movement for any dtype: elements are moved with memcpy of their size, which compilers turn into
 * single loads and stores for constant sizes and which never breaks strict aliasing. */
#include <string.h>

#include "tinyc_kernels.h"

#define TINYC_GATHER(SIZE)                                          \
    case SIZE:                                                      \
        for (i = 0; i < len; i++)                                   \
            memcpy(q + i * SIZE, p + (int64_t)i * s * SIZE, SIZE);  \
        break;

void tinyc_transpose(const void *x, void *y, int32_t elem_size, int32_t ndim, const int32_t *out_shape,
                     const int32_t *in_stride)
{
    const int32_t last = ndim - 1, len = out_shape[last], s = in_stride[last];
    int32_t count = 1, idx[TINYC_MAX_DIMS] = {0}, off = 0, t, i, d;
    for (t = 0; t < last; t++)
        count *= out_shape[t];
    for (t = 0; t < count; t++) {
        const uint8_t *p = (const uint8_t *)x + (int64_t)off * elem_size;
        uint8_t *q = (uint8_t *)y + (int64_t)t * len * elem_size;
        switch (elem_size) {
        TINYC_GATHER(1)
        TINYC_GATHER(2)
        TINYC_GATHER(4)
        TINYC_GATHER(8)
        default:
            for (i = 0; i < len; i++)
                memcpy(q + i * elem_size, p + (int64_t)i * s * elem_size, (size_t)elem_size);
        }
        for (d = last - 1; d >= 0; d--) {
            off += in_stride[d];
            if (++idx[d] < out_shape[d])
                break;
            off -= in_stride[d] * out_shape[d];
            idx[d] = 0;
        }
    }
}

void tinyc_copy_rows(const void *x, void *y, int32_t rows, int32_t row_bytes, int32_t y_stride)
{
    int32_t r;
    for (r = 0; r < rows; r++)
        memcpy((uint8_t *)y + (int64_t)r * y_stride, (const uint8_t *)x + (int64_t)r * row_bytes,
               (size_t)row_bytes);
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

void tinyc_pad(const void *x, void *y, int32_t elem_size, int32_t ndim, const int32_t *in_shape,
               const int32_t *out_shape, const int32_t *pad_begin, int32_t mode, const void *value)
{
    const int32_t last = ndim - 1, len = out_shape[last], n = in_shape[last], pb = pad_begin[last];
    int32_t stride[TINYC_MAX_DIMS], idx[TINYC_MAX_DIMS] = {0}, count = 1, t, d, j;
    uint8_t *q = (uint8_t *)y;
    stride[last] = 1;
    for (d = last - 1; d >= 0; d--)
        stride[d] = stride[d + 1] * in_shape[d + 1];
    for (t = 0; t < last; t++)
        count *= out_shape[t];
    for (t = 0; t < count; t++, q += (int64_t)len * elem_size) {
        int32_t off = 0, src = 0;
        for (d = 0; d < last && src >= 0; d++) {
            src = pad_source(idx[d] - pad_begin[d], in_shape[d], mode);
            off += src * stride[d];
        }
        if (src < 0) {
            for (j = 0; j < len; j++)
                memcpy(q + j * elem_size, value, (size_t)elem_size);
        } else {
            const uint8_t *p = (const uint8_t *)x + (int64_t)off * elem_size;
            for (j = 0; j < len; j++) {
                if (j == pb && n > 0) {
                    memcpy(q + j * elem_size, p, (size_t)n * elem_size);
                    j += n - 1;
                    continue;
                }
                src = pad_source(j - pb, n, mode);
                memcpy(q + j * elem_size, src < 0 ? value : p + src * elem_size, (size_t)elem_size);
            }
        }
        for (d = last - 1; d >= 0; d--) {
            if (++idx[d] < out_shape[d])
                break;
            idx[d] = 0;
        }
    }
}
