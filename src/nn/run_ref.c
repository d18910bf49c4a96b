/*
 * run_ref.c: the scalar reference kernels.
 *
 * Plain loops, written to be obviously correct rather than fast: they are
 * what the XNNPACK backend is tested against, and the XNNPACK backend's
 * fallback for what the 2022 XNNPACK snapshot refuses (1x1 pools). Each
 * kernel follows the conventions stated in nn.h literally:
 *   - NHWC, one item (exec.c runs each kernel once per batch item); value
 *     index (y*W + x)*C + c.
 *   - conv weights OHWI; depthwise weights [kh][kw][cin*mult] with output
 *     channel ci*mult + m reading input channel ci (TFLite);
 *   - padding {top, left, bottom, right}; padded cells are zeros for convs,
 *     ignored for max pooling and not counted for average pooling;
 *   - bilinear resize: TF half_pixel_centers (src = (dst + 0.5) * in/out -
 *     0.5) or TF legacy (src = dst * in/out), then TF's floor/ceil clamped to
 *     the image with lerp = src - floor(src).
 * Accumulation is in float, in the natural loop order; the XNNPACK path
 * accumulates in another order, which the tests bound with an NMSE.
 *
 * Threading: pure functions of their arguments.
 */
#include "nn/nn_int.h"

#include <math.h>
#include <string.h>

/* Apply a fused activation to one value. */
static float act1(int act, float alpha, float v)
{
    switch (act) {
    case FL_NN_ACT_RELU:
        return v > 0.0f ? v : 0.0f;
    case FL_NN_ACT_RELU6:
        return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    case FL_NN_ACT_LEAKY:
        return v > 0.0f ? v : alpha * v;
    case FL_NN_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-v));
    case FL_NN_ACT_TANH:
        return tanhf(v);
    default:
        return v;
    }
}

/* Convolution (depthwise when dw): weights w, bias b. */
static void conv(const struct fl__nn_op *op, bool dw, const float *w, const float *b,
                 const float *x, const int s0[3], float *y, const int sy[3])
{
    const int H = s0[0], W = s0[1], C = s0[2], OH = sy[0], OW = sy[1], OC = sy[2];
    const int mult = op->n;
    for (int oy = 0; oy < OH; oy++) {
        for (int ox = 0; ox < OW; ox++) {
            for (int oc = 0; oc < OC; oc++) {
                float acc = b[oc];
                for (int ky = 0; ky < op->kh; ky++) {
                    int iy = oy * op->sh - op->pad.top + ky;
                    if (iy < 0 || iy >= H)
                        continue;
                    for (int kx = 0; kx < op->kw; kx++) {
                        int ix = ox * op->sw - op->pad.left + kx;
                        const float *px;
                        if (ix < 0 || ix >= W)
                            continue;
                        px = x + ((size_t)iy * W + ix) * C;
                        if (dw) {
                            acc += px[oc / mult] * w[((size_t)ky * op->kw + kx) * OC + oc];
                        } else {
                            const float *pw = w + (((size_t)oc * op->kh + ky) * op->kw + kx) * C;
                            for (int ci = 0; ci < C; ci++)
                                acc += px[ci] * pw[ci];
                        }
                    }
                }
                y[((size_t)oy * OW + ox) * OC + oc] = act1(op->act, op->alpha, acc);
            }
        }
    }
}

/* Max or average pooling, padded cells ignored / not counted. */
static void pool(const struct fl__nn_op *op, bool avg, const float *x, const int s0[3], float *y,
                 const int sy[3])
{
    const int H = s0[0], W = s0[1], C = s0[2], OH = sy[0], OW = sy[1];
    for (int oy = 0; oy < OH; oy++) {
        for (int ox = 0; ox < OW; ox++) {
            for (int c = 0; c < C; c++) {
                float acc = avg ? 0.0f : -INFINITY;
                int count = 0;
                for (int ky = 0; ky < op->kh; ky++) {
                    int iy = oy * op->sh - op->pad.top + ky;
                    if (iy < 0 || iy >= H)
                        continue;
                    for (int kx = 0; kx < op->kw; kx++) {
                        int ix = ox * op->sw - op->pad.left + kx;
                        float v;
                        if (ix < 0 || ix >= W)
                            continue;
                        v = x[((size_t)iy * W + ix) * C + c];
                        if (avg)
                            acc += v;
                        else if (v > acc)
                            acc = v;
                        count++;
                    }
                }
                /* count >= 1: the builder keeps padding smaller than the window */
                y[((size_t)oy * OW + ox) * C + c] = avg ? acc / (float)count : acc;
            }
        }
    }
}

/* TF's interpolation along one axis: lower/upper source index and weight. */
static void lerp_axis(int dst, int in, int out, bool half_pixel, int *lo, int *hi, float *t)
{
    float scale = (float)in / (float)out;
    float src = half_pixel ? ((float)dst + 0.5f) * scale - 0.5f : (float)dst * scale;
    float fl = floorf(src);
    int l = (int)fl, h = (int)ceilf(src);
    *t = src - fl;
    *lo = l < 0 ? 0 : (l > in - 1 ? in - 1 : l);
    *hi = h < 0 ? 0 : (h > in - 1 ? in - 1 : h);
}

/* Bilinear resize of x (s0) to y (sy), TF semantics per op->n (half_pixel). */
static void resize(const struct fl__nn_op *op, const float *x, const int s0[3], float *y,
                   const int sy[3])
{
    const int H = s0[0], W = s0[1], C = s0[2], OH = sy[0], OW = sy[1];
    for (int oy = 0; oy < OH; oy++) {
        int y0, y1;
        float ty;
        lerp_axis(oy, H, OH, op->n != 0, &y0, &y1, &ty);
        for (int ox = 0; ox < OW; ox++) {
            int x0, x1;
            float tx;
            lerp_axis(ox, W, OW, op->n != 0, &x0, &x1, &tx);
            for (int c = 0; c < C; c++) {
                float tl = x[((size_t)y0 * W + x0) * C + c], tr = x[((size_t)y0 * W + x1) * C + c];
                float bl = x[((size_t)y1 * W + x0) * C + c], br = x[((size_t)y1 * W + x1) * C + c];
                float top = tl + (tr - tl) * tx, bot = bl + (br - bl) * tx;
                y[((size_t)oy * OW + ox) * C + c] = top + (bot - top) * ty;
            }
        }
    }
}

void fl__nn_ref_op(const struct fl__nn_ir *ir, const struct fl__nn_op *op, const float *x0,
                   const int s0[3], const float *x1, const int s1[3], float *y, const int sy[3])
{
    const float *w = op->wblob >= 0 ? ir->blobs[op->wblob].data : NULL;
    const float *b = op->bblob >= 0 ? ir->blobs[op->bblob].data : NULL;
    const size_t n0 = (size_t)s0[0] * s0[1] * s0[2];
    const int C = s0[2];
    (void)s1;

    switch (op->type) {
    case FL__NN_OP_CONV:
        conv(op, false, w, b, x0, s0, y, sy);
        break;
    case FL__NN_OP_DWCONV:
        conv(op, true, w, b, x0, s0, y, sy);
        break;
    case FL__NN_OP_FC:
        for (int o = 0; o < op->n; o++) {
            const float *pw = w + (size_t)o * n0;
            float acc = b[o];
            for (size_t i = 0; i < n0; i++)
                acc += pw[i] * x0[i];
            y[o] = act1(op->act, op->alpha, acc);
        }
        break;
    case FL__NN_OP_ADD:
        for (size_t i = 0; i < n0; i++)
            y[i] = act1(op->act, op->alpha, x0[i] + x1[i]);
        break;
    case FL__NN_OP_MUL:
        for (size_t i = 0; i < n0; i++)
            y[i] = x0[i] * x1[i];
        break;
    case FL__NN_OP_AFFINE:
        for (size_t i = 0; i < n0; i++)
            y[i] = x0[i] * w[i % C] + b[i % C];
        break;
    case FL__NN_OP_PRELU:
        for (size_t i = 0; i < n0; i++)
            y[i] = x0[i] > 0.0f ? x0[i] : x0[i] * w[i % C];
        break;
    case FL__NN_OP_ACT:
        for (size_t i = 0; i < n0; i++)
            y[i] = act1(op->act, op->alpha, x0[i]);
        break;
    case FL__NN_OP_MAXPOOL:
        pool(op, false, x0, s0, y, sy);
        break;
    case FL__NN_OP_AVGPOOL:
        pool(op, true, x0, s0, y, sy);
        break;
    case FL__NN_OP_GAVGPOOL: {
        size_t hw = (size_t)s0[0] * s0[1];
        for (int c = 0; c < C; c++) {
            float acc = 0.0f;
            for (size_t p = 0; p < hw; p++)
                acc += x0[p * C + c];
            y[c] = acc / (float)hw;
        }
        break;
    }
    case FL__NN_OP_PAD: {
        const int OW = sy[1], OC = sy[2];
        memset(y, 0, (size_t)sy[0] * OW * OC * sizeof(float));
        for (int iy = 0; iy < s0[0]; iy++) {
            for (int ix = 0; ix < s0[1]; ix++) {
                float *dst = y + ((size_t)(iy + op->pad.top) * OW + (ix + op->pad.left)) * OC;
                memcpy(dst + op->n, x0 + ((size_t)iy * s0[1] + ix) * C, (size_t)C * sizeof(float));
            }
        }
        break;
    }
    case FL__NN_OP_CONCAT: {
        const int C1 = s1[2];
        size_t hw = (size_t)s0[0] * s0[1];
        for (size_t p = 0; p < hw; p++) {
            memcpy(y + p * (C + C1), x0 + p * C, (size_t)C * sizeof(float));
            memcpy(y + p * (C + C1) + C, x1 + p * C1, (size_t)C1 * sizeof(float));
        }
        break;
    }
    case FL__NN_OP_SOFTMAX: {
        size_t hw = (size_t)s0[0] * s0[1];
        for (size_t p = 0; p < hw; p++) {
            const float *px = x0 + p * C;
            float *py = y + p * C;
            float mx = px[0], sum = 0.0f;
            for (int c = 1; c < C; c++)
                mx = px[c] > mx ? px[c] : mx;
            for (int c = 0; c < C; c++) {
                py[c] = expf(px[c] - mx);
                sum += py[c];
            }
            for (int c = 0; c < C; c++)
                py[c] /= sum;
        }
        break;
    }
    case FL__NN_OP_RESIZE:
        resize(op, x0, s0, y, sy);
        break;
    default:
        FL_ASSERT(!"reference kernel for an unknown op");
    }
}
