/* float32 kernels. Accumulation follows the reference's order where cheap (pools exactly), so results
 * stay within rounding of tinyc.ir.interpret. */
#include <math.h>
#include <string.h>

#include "tinyc_kernels.h"
#include "tinyc_window.h"

void tinyc_conv_f32(const tinyc_window *g, const float *x, const float *w, const float *bias, float *y)
{
    const int32_t cg = g->c / g->groups, mg = g->m / g->groups;
    const int32_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int32_t out_plane = g->out[0] * g->out[1] * g->out[2];
    const int32_t ksize = g->kernel[0] * g->kernel[1] * g->kernel[2];
    int32_t n, m, od, oh, ow0, c, kd, kh, kw, i;
    float acc[TINYC_CHUNK];

    for (n = 0; n < g->n; n++)
        for (m = 0; m < g->m; m++) {
            const float *xg = x + (n * g->c + m / mg * cg) * in_plane;
            const float *wm = w + m * cg * ksize;
            float *ym = y + (n * g->m + m) * out_plane;
            for (od = 0; od < g->out[0]; od++)
                for (oh = 0; oh < g->out[1]; oh++)
                    for (ow0 = 0; ow0 < g->out[2]; ow0 += TINYC_CHUNK) {
                        const int32_t len = tinyc_min(TINYC_CHUNK, g->out[2] - ow0);
                        memset(acc, 0, sizeof acc);
                        for (c = 0; c < cg; c++)
                            for (kd = 0; kd < g->kernel[0]; kd++) {
                                const int32_t id = tinyc_window_pos(g, 0, od, kd);
                                if (id < 0 || id >= g->in[0])
                                    continue;
                                for (kh = 0; kh < g->kernel[1]; kh++) {
                                    const int32_t ih = tinyc_window_pos(g, 1, oh, kh);
                                    const float *row, *wk;
                                    if (ih < 0 || ih >= g->in[1])
                                        continue;
                                    row = xg + c * in_plane + (id * g->in[1] + ih) * g->in[2];
                                    wk = wm + ((c * g->kernel[0] + kd) * g->kernel[1] + kh) * g->kernel[2];
                                    for (kw = 0; kw < g->kernel[2]; kw++) {
                                        const float wv = wk[kw];
                                        const int32_t off = kw * g->dilation[2] - g->pad[2], s = g->stride[2];
                                        int32_t lo, hi;
                                        tinyc_row_range(g, off, ow0, len, &lo, &hi);
                                        for (i = lo; i < hi; i++)
                                            acc[i - ow0] += wv * row[i * s + off];
                                    }
                                }
                            }
                        for (i = 0; i < len; i++)
                            ym[(od * g->out[1] + oh) * g->out[2] + ow0 + i] = bias ? acc[i] + bias[m] : acc[i];
                    }
        }
}

void tinyc_matmul_f32(const tinyc_bcast *batch, const float *a, const float *b, float *y, int32_t m, int32_t k,
                      int32_t n)
{
    int32_t count = 1, idx[TINYC_MAX_DIMS] = {0}, off_a = 0, off_b = 0, t, r, j, i;
    for (t = 0; t < batch->ndim; t++)
        count *= batch->shape[t];
    for (t = 0; t < count; t++, y += m * n) {
        for (r = 0; r < m; r++) {
            const float *ar = a + off_a + r * k;
            for (j = 0; j < n; j++) {
                /* in double, each product exact: the sum rounds to the float the reference's float64
                 * matmul gives, whatever order either adds in (barring a double rounding that crosses
                 * a float one), so a quantize after it sees the same float */
                const float *bj = b + off_b + j;
                double acc = 0.0;
                for (i = 0; i < k; i++)
                    acc += (double)ar[i] * (double)bj[i * n];
                y[r * n + j] = (float)acc;
            }
        }
        tinyc_bcast_step(batch, batch->ndim, idx, &off_a, &off_b);
    }
}

/* The outer dims are walked by tinyc_bcast_step; the last dim is a strided inner loop. */
#define TINYC_BINARY(NAME, EXPR)                                                          \
    void NAME(const tinyc_bcast *b, const float *x0, const float *x1, float *y)           \
    {                                                                                     \
        const int32_t last = b->ndim - 1, len = b->shape[last];                           \
        const int32_t sa = b->stride_a[last], sb = b->stride_b[last];                     \
        int32_t count = 1, idx[TINYC_MAX_DIMS] = {0}, off_a = 0, off_b = 0, t, i;         \
        for (t = 0; t < last; t++)                                                        \
            count *= b->shape[t];                                                         \
        for (t = 0; t < count; t++, y += len) {                                           \
            const float *p = x0 + off_a, *q = x1 + off_b;                                 \
            for (i = 0; i < len; i++)                                                     \
                y[i] = EXPR(p[i * sa], q[i * sb]);                                        \
            tinyc_bcast_step(b, last, idx, &off_a, &off_b);                               \
        }                                                                                 \
    }

#define TINYC_ADD(u, v) ((u) + (v))
#define TINYC_MUL(u, v) ((u) * (v))
TINYC_BINARY(tinyc_add_f32, TINYC_ADD)
TINYC_BINARY(tinyc_mul_f32, TINYC_MUL)

void tinyc_relu_f32(const float *x, float *y, int32_t size)
{
    int32_t i;
    for (i = 0; i < size; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* Written with comparisons, not fminf/fmaxf, so that NaN propagates as in numpy. */
void tinyc_clip_f32(const float *x, float *y, int32_t size, float lo, float hi)
{
    int32_t i;
    for (i = 0; i < size; i++) {
        const float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

void tinyc_sigmoid_f32(const float *x, float *y, int32_t size)
{
    int32_t i;
    for (i = 0; i < size; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void tinyc_softmax_f32(const float *x, float *y, int32_t outer, int32_t axis, int32_t inner)
{
    int32_t o, a, i;
    for (o = 0; o < outer; o++)
        for (i = 0; i < inner; i++) {
            const float *xs = x + o * axis * inner + i;
            float *ys = y + o * axis * inner + i;
            float top = xs[0], sum = 0.0f;
            for (a = 1; a < axis; a++)
                top = xs[a * inner] > top ? xs[a * inner] : top;
            for (a = 0; a < axis; a++) {
                ys[a * inner] = expf(xs[a * inner] - top);
                sum += ys[a * inner];
            }
            for (a = 0; a < axis; a++)
                ys[a * inner] /= sum;
        }
}

void tinyc_avgpool_f32(const tinyc_window *g, const float *x, float *y, int32_t count_include_pad)
{
    int32_t plane, od, oh, ow, kd, kh, kw;
    for (plane = 0; plane < g->n * g->c; plane++) {
        const float *xp = x + plane * g->in[0] * g->in[1] * g->in[2];
        for (od = 0; od < g->out[0]; od++)
            for (oh = 0; oh < g->out[1]; oh++)
                for (ow = 0; ow < g->out[2]; ow++) {
                    float total = 0.0f;
                    int32_t inside = 0, padded = 0;
                    for (kd = 0; kd < g->kernel[0]; kd++) {
                        const int32_t id = tinyc_window_pos(g, 0, od, kd);
                        for (kh = 0; kh < g->kernel[1]; kh++) {
                            const int32_t ih = tinyc_window_pos(g, 1, oh, kh);
                            for (kw = 0; kw < g->kernel[2]; kw++) {
                                const int32_t iw = tinyc_window_pos(g, 2, ow, kw);
                                padded += tinyc_in_padding(g, 0, id) && tinyc_in_padding(g, 1, ih)
                                          && tinyc_in_padding(g, 2, iw);
                                if (tinyc_in_input(g, 0, id) && tinyc_in_input(g, 1, ih) && tinyc_in_input(g, 2, iw)) {
                                    total += xp[(id * g->in[1] + ih) * g->in[2] + iw];
                                    inside++;
                                }
                            }
                        }
                    }
                    *y++ = total / (float)(count_include_pad ? padded : inside);
                }
    }
}

void tinyc_maxpool_f32(const tinyc_window *g, const float *x, float *y)
{
    TINYC_MAXPOOL_BODY(float, -INFINITY)
}
