/*
 * import_faceapi.c: the seven face-api nets as nn graphs, hand-written from
 * face-api's TypeScript (@vladmandic/face-api 1.7.15, src/), plus their
 * pre- and post-processing helpers.
 *
 * face-api ships weights only (named tensors in a tfjs manifest); the
 * architecture lives in its TS code, so each net is a C function here that
 * replays that code through the nn.h builder:
 *
 *   face_recognition   FaceRecognitionNet.ts, residualLayer.ts: dlib's
 *                      ResNet-29. conv + bias + "scale layer" (mul, add) is
 *                      folded into one conv. residualDown adds avgPool(2,2,
 *                      valid) of its input, zero-padded in channels (zeros
 *                      AFTER the input channels, tf.concat([pooled, zeros]))
 *                      and, when the 3x3 valid stride-2 conv gave a smaller
 *                      map (8 -> 3 vs pool 4, 4 -> 1 vs pool 2), the conv
 *                      branch gets one zero row at the BOTTOM and one zero
 *                      column at the RIGHT (tf.concat([out, zeros]) on axes 1
 *                      then 2). Exactly one, whatever the difference: the
 *                      builder checks the shapes then agree.
 *   face_landmark_68 / face_expression
 *                      FaceFeatureExtractor.ts + denseBlock.ts (4 dense
 *                      blocks of 4 convs, avgPool 7/2 valid) + an FC head.
 *   face_landmark_68_tiny
 *                      TinyFaceFeatureExtractor.ts (3 dense blocks of 3,
 *                      avgPool 14/2 valid) + FC.
 *   age_gender         TinyXception.ts (entry conv, 2 reduction blocks, 2
 *                      main blocks, exit reduction block + separable conv)
 *                      + avgPool 7/2 valid + two FC heads. Note: not the
 *                      dense-block backbone the expression net uses.
 *   ssd_mobilenetv1    mobileNetV1.ts, predictionLayer.ts: MobileNet-v1
 *                      (depthwise conv + batch norm folded, ReLU6) and the
 *                      SSD prediction layers; the 6 box-encoding and 6 class
 *                      convs are graph outputs and the anchor decoding
 *                      (outputLayer.ts) is plain C (fl_nn_faceapi_ssd_decode).
 *   tiny_face_detector TinyYolov2Base.runMobilenet with TinyFaceDetector's
 *                      config: conv 3x3 valid, 5 x (pad 1, separable conv,
 *                      leaky 0.1) with max pools, conv 1x1 -> 5 anchors x 5.
 *
 * Conventions applied at import (nn.h): conv filters HWIO -> OHWI,
 * depthwise [kh,kw,C,mult] is already nn's [kh][kw][C*mult], matmul
 * [in,out] -> [out][in]. TF SAME padding is resolved from the input size
 * (odd pixel at the bottom/right). The tiny detector's input size is
 * dynamic; its only SAME ops are stride-1 ops (pads independent of size)
 * and 2x2 stride-2 max pools, where TF SAME is "one padded row/column at the
 * bottom/right if the size is odd": a pad of {0,0,1,1} gives the same
 * windows and output size for odd and even sizes alike.
 *
 * Folding (done in double, rounded once to float32): scale layer
 * (conv + b) * s + t = conv(x, W*s) + (b*s + t); batch norm
 * (x - mean) * gamma / sqrt(var + eps) + beta likewise. This reorders the
 * float32 arithmetic of tfjs by a few ulp per layer; the golden tests (C
 * tolerances of the golden README) measure that it stays far below them.
 *
 * Shapes: the builder tracks {h, w, c} of every value itself, because TF
 * SAME pads depend on the input size and because weight tensors must be
 * checked against the channel count they will be applied to before the
 * nn builder reads them (it takes raw pointers). Every weight is checked
 * for presence, dtype and shape; a mismatch records FL_ERR_CORRUPT in the
 * graph (sticky) and the build fails in fl_nn_model_new().
 *
 * Threading: builders are re-entrant; the helpers are pure.
 */
#include "nn/faceapi.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FACEAPI_VERSION "face-api-1.7.15"

/* A graph value and its shape; h = w = 0 for a dynamic size. id < 0 after
 * an error (the graph holds the sticky error). */
struct val {
    int id;
    int h, w, c;
};

static const struct val BAD = {-1, 0, 0, 0};

enum padmode {
    PAD_VALID, /* no padding */
    PAD_SAME,  /* TF SAME */
    PAD_ONE,   /* one pixel on every side (tinyYolov2's tf.pad before a valid conv) */
};

struct bld {
    struct fl_nn_graph *g;
    const struct fl_nn_faceapi_weights *w;
};

/* ============================== Helpers ============================== */

/* Format a tensor or scope name. A name that does not fit is truncated,
 * which makes the lookup that follows fail cleanly ("missing tensor"). */
static void nm(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nm(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* Record a corrupt-weights error in the graph; returns BAD. */
static struct val fail_corrupt(struct bld *b, const char *what, const char *name)
{
    fl_nn_graph_fail(b->g, FL_ERR_CORRUPT, "faceapi: %s: %s", name, what);
    return BAD;
}

/* Record an out-of-memory error in the graph; returns BAD. */
static struct val fail_nomem(struct bld *b)
{
    fl_nn_graph_fail(b->g, FL_ERR_NOMEM, "faceapi: out of memory");
    return BAD;
}

/* A float32 tensor of the given rank whose dims match dims[] (-1 = any), or
 * NULL after recording FL_ERR_CORRUPT. */
static const struct fl_nn_faceapi_tensor *tensor(struct bld *b, const char *name, int rank,
                                                 const int *dims)
{
    const struct fl_nn_faceapi_tensor *t = fl_nn_faceapi_weights_get(b->w, name);

    if (!t) {
        fail_corrupt(b, "missing tensor", name);
        return NULL;
    }
    if (t->dtype != FL_NN_FACEAPI_F32 || t->rank != rank) {
        fail_corrupt(b, "unexpected dtype or rank", name);
        return NULL;
    }
    for (int i = 0; i < rank; i++) {
        if (dims[i] >= 0 && t->shape[i] != dims[i]) {
            fail_corrupt(b, "unexpected shape", name);
            return NULL;
        }
    }
    return t;
}

/* A 1-d float32 tensor of n elements, by "<prefix>/<leaf>". */
static const float *vec(struct bld *b, const char *prefix, const char *leaf, int n)
{
    char name[256];
    const struct fl_nn_faceapi_tensor *t;

    nm(name, sizeof(name), "%s%s%s", prefix, *prefix ? "/" : "", leaf);
    t = tensor(b, name, 1, (const int[]){n});
    return t ? t->f32 : NULL;
}

/* TF SAME padding along one axis of size n (0 = dynamic). *ok is cleared
 * when the pads would depend on a dynamic size. */
static void same_pad(int n, int k, int s, int *before, int *after, bool *ok)
{
    int total;

    if (n > 0) {
        int out = (n + s - 1) / s;
        total = (out - 1) * s + k - n;
        if (total < 0)
            total = 0;
    } else if (s == 1) {
        total = k - 1;
    } else if (k == 2 && s == 2) {
        /* odd sizes need one pixel after, even sizes none: padding one
         * always gives the same windows and output size (see top). */
        *before = 0;
        *after = 1;
        return;
    } else {
        *ok = false;
        total = 0;
    }
    *before = total / 2;
    *after = total - *before;
}

/* Resolve a pad mode for a k x k window with stride s on x. */
static bool resolve_pad(struct val x, int k, int s, enum padmode pm, struct fl_nn_pad4 *p)
{
    bool ok = true;

    *p = (struct fl_nn_pad4){0, 0, 0, 0};
    if (pm == PAD_ONE) {
        *p = (struct fl_nn_pad4){1, 1, 1, 1};
    } else if (pm == PAD_SAME) {
        same_pad(x.h, k, s, &p->top, &p->bottom, &ok);
        same_pad(x.w, k, s, &p->left, &p->right, &ok);
    }
    return ok;
}

/* Output size of a window op along one axis (0 stays dynamic). */
static int win_out(int n, int k, int s, int before, int after)
{
    if (n == 0)
        return 0;
    return (n + before + after - k) / s + 1;
}

/* Shape of a window op's output; false (with BAD recorded) if it would be
 * empty. */
static bool win_shape(struct bld *b, struct val x, int k, int s, struct fl_nn_pad4 p, int c,
                      struct val *out, const char *name)
{
    out->h = win_out(x.h, k, s, p.top, p.bottom);
    out->w = win_out(x.w, k, s, p.left, p.right);
    out->c = c;
    if ((x.h && (x.h + p.top + p.bottom < k)) || (x.w && (x.w + p.left + p.right < k))) {
        fail_corrupt(b, "input smaller than the window", name);
        return false;
    }
    return true;
}

/* Convolution from a tfjs HWIO filter, optional bias, optional per-channel
 * affine applied after the bias (scale layer or batch norm already reduced
 * to scale/shift). Folds, converts to OHWI and adds the op. */
static struct val conv_fold(struct bld *b, struct val x, const char *fname, const float *bias,
                            const float *scale, const float *shift, int stride, enum padmode pm,
                            enum fl_nn_act act, float alpha)
{
    const struct fl_nn_faceapi_tensor *f;
    struct fl_nn_pad4 p;
    struct val out;
    float *wt = NULL, *bt = NULL;
    int kh, kw, cin, cout;

    if (x.id < 0)
        return BAD;
    f = tensor(b, fname, 4, (const int[]){-1, -1, x.c, -1});
    if (!f)
        return BAD;
    kh = f->shape[0];
    kw = f->shape[1];
    cin = f->shape[2];
    cout = f->shape[3];
    if (kh != kw || kh < 1 || cout < 1)
        return fail_corrupt(b, "filter not square", fname);
    if (!resolve_pad(x, kh, stride, pm, &p))
        return fail_corrupt(b, "SAME padding needs a static size", fname);
    if (!win_shape(b, x, kh, stride, p, cout, &out, fname))
        return BAD;
    wt = fl_malloc(f->n * sizeof(float));
    bt = fl_malloc((size_t)cout * sizeof(float));
    if (!wt || !bt) {
        fl_free(wt);
        fl_free(bt);
        return fail_nomem(b);
    }
    for (int o = 0; o < cout; o++) {
        double s = scale ? (double)scale[o] : 1.0;
        for (int y = 0; y < kh; y++)
            for (int xx = 0; xx < kw; xx++)
                for (int i = 0; i < cin; i++) {
                    size_t src = (((size_t)y * kw + xx) * cin + i) * cout + o;
                    size_t dst = (((size_t)o * kh + y) * kw + xx) * cin + i;
                    wt[dst] = scale ? (float)((double)f->f32[src] * s) : f->f32[src];
                }
        if (scale || shift) {
            double v = bias ? (double)bias[o] : 0.0;
            v *= s;
            v += shift ? (double)shift[o] : 0.0;
            bt[o] = (float)v;
        } else {
            bt[o] = bias ? bias[o] : 0.0f;
        }
    }
    out.id = fl_nn_conv2d(b->g, x.id, wt, bt, cout, kh, kw, stride, stride, p, act, alpha);
    fl_free(wt);
    fl_free(bt);
    return out.id < 0 ? BAD : out;
}

/* face-api recognition convLayer: "<prefix>/conv/{filters,bias}" and
 * "<prefix>/scale/{weights,biases}" folded into one conv. */
static struct val conv_scale(struct bld *b, struct val x, const char *prefix, int stride,
                             enum padmode pm, bool relu)
{
    char fname[256], p2[256], p3[256];
    const struct fl_nn_faceapi_tensor *f;
    const float *bias, *sw, *sb;
    int cout;

    if (x.id < 0)
        return BAD;
    nm(fname, sizeof(fname), "%s/conv/filters", prefix);
    f = tensor(b, fname, 4, (const int[]){-1, -1, x.c, -1});
    if (!f)
        return BAD;
    cout = f->shape[3];
    nm(p2, sizeof(p2), "%s/conv", prefix);
    nm(p3, sizeof(p3), "%s/scale", prefix);
    bias = vec(b, p2, "bias", cout);
    sw = vec(b, p3, "weights", cout);
    sb = vec(b, p3, "biases", cout);
    if (!bias || !sw || !sb)
        return BAD;
    return conv_fold(b, x, fname, bias, sw, sb, stride, pm, relu ? FL_NN_ACT_RELU : FL_NN_ACT_NONE,
                     0.0f);
}

/* Plain conv + bias: "<prefix>/<fleaf>" and "<prefix>/<bleaf>". */
static struct val conv_bias(struct bld *b, struct val x, const char *prefix, const char *fleaf,
                            const char *bleaf, int stride, enum padmode pm, enum fl_nn_act act,
                            float alpha)
{
    char fname[256];
    const struct fl_nn_faceapi_tensor *f;
    const float *bias;

    if (x.id < 0)
        return BAD;
    nm(fname, sizeof(fname), "%s/%s", prefix, fleaf);
    f = tensor(b, fname, 4, (const int[]){-1, -1, x.c, -1});
    if (!f)
        return BAD;
    bias = vec(b, prefix, bleaf, f->shape[3]);
    if (!bias)
        return BAD;
    return conv_fold(b, x, fname, bias, NULL, NULL, stride, pm, act, alpha);
}

/* Depthwise conv from a tfjs [kh,kw,C,1] filter, optional per-channel
 * scale/shift folded in (batch norm), optional activation. */
static struct val dwconv(struct bld *b, struct val x, const char *fname, const float *scale,
                         const float *shift, int stride, enum padmode pm, enum fl_nn_act act)
{
    const struct fl_nn_faceapi_tensor *f;
    struct fl_nn_pad4 p;
    struct val out;
    float *wt = NULL, *bt = NULL;
    int k, c;

    if (x.id < 0)
        return BAD;
    f = tensor(b, fname, 4, (const int[]){-1, -1, x.c, 1});
    if (!f)
        return BAD;
    k = f->shape[0];
    c = x.c;
    if (f->shape[1] != k || k < 1)
        return fail_corrupt(b, "filter not square", fname);
    if (!resolve_pad(x, k, stride, pm, &p))
        return fail_corrupt(b, "SAME padding needs a static size", fname);
    if (!win_shape(b, x, k, stride, p, c, &out, fname))
        return BAD;
    if (scale || shift) {
        wt = fl_malloc(f->n * sizeof(float));
        bt = fl_malloc((size_t)c * sizeof(float));
        if (!wt || !bt) {
            fl_free(wt);
            fl_free(bt);
            return fail_nomem(b);
        }
        /* [kh][kw][C][1] is nn's [kh][kw][C*1]: only the fold changes values */
        for (size_t i = 0; i < f->n; i++)
            wt[i] = scale ? (float)((double)f->f32[i] * (double)scale[i % (size_t)c]) : f->f32[i];
        for (int i = 0; i < c; i++)
            bt[i] = shift ? shift[i] : 0.0f;
    }
    out.id =
        fl_nn_dwconv2d(b->g, x.id, wt ? wt : f->f32, bt, 1, k, k, stride, stride, p, act, 0.0f);
    fl_free(wt);
    fl_free(bt);
    return out.id < 0 ? BAD : out;
}

/* face-api separable conv (tf.separableConv2d + bias): depthwise 3x3 without
 * bias, then 1x1 conv with "<prefix>/bias", then act. */
static struct val sepconv(struct bld *b, struct val x, const char *prefix, int stride,
                          enum padmode pm, enum fl_nn_act act, float alpha)
{
    char dname[256];

    nm(dname, sizeof(dname), "%s/depthwise_filter", prefix);
    x = dwconv(b, x, dname, NULL, NULL, stride, pm, FL_NN_ACT_NONE);
    return conv_bias(b, x, prefix, "pointwise_filter", "bias", 1, PAD_VALID, act, alpha);
}

/* Fully connected from a tfjs matmul weight [in, out] (+ optional bias). */
static struct val fc(struct bld *b, struct val x, const char *wname, const char *bprefix)
{
    const struct fl_nn_faceapi_tensor *t;
    const float *bias = NULL;
    struct val out = {-1, 1, 1, 0};
    float *wt;
    int in, cout;

    if (x.id < 0)
        return BAD;
    if (x.h <= 0 || x.w <= 0)
        return fail_corrupt(b, "FC needs a static input", wname);
    in = x.h * x.w * x.c;
    t = tensor(b, wname, 2, (const int[]){in, -1});
    if (!t)
        return BAD;
    cout = t->shape[1];
    if (bprefix) {
        bias = vec(b, bprefix, "bias", cout);
        if (!bias)
            return BAD;
    }
    wt = fl_malloc(t->n * sizeof(float));
    if (!wt)
        return fail_nomem(b);
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < in; i++)
            wt[(size_t)o * in + i] = t->f32[(size_t)i * cout + o];
    out.id = fl_nn_fc(b->g, x.id, wt, bias, cout, FL_NN_ACT_NONE, 0.0f);
    out.c = cout;
    fl_free(wt);
    return out.id < 0 ? BAD : out;
}

/* x + y (shapes must agree: CORRUPT otherwise), then act. */
static struct val add(struct bld *b, struct val x, struct val y, enum fl_nn_act act)
{
    struct val out = x;

    if (x.id < 0 || y.id < 0)
        return BAD;
    if (x.h != y.h || x.w != y.w || x.c != y.c) {
        fl_nn_graph_fail(b->g, FL_ERR_CORRUPT, "faceapi: add of %dx%dx%d and %dx%dx%d", x.h, x.w,
                         x.c, y.h, y.w, y.c);
        return BAD;
    }
    out.id = fl_nn_add(b->g, x.id, y.id, act, 0.0f);
    return out.id < 0 ? BAD : out;
}

/* ReLU as its own op (for values also used un-activated). */
static struct val relu(struct bld *b, struct val x)
{
    if (x.id < 0)
        return BAD;
    x.id = fl_nn_activation(b->g, x.id, FL_NN_ACT_RELU, 0.0f);
    return x.id < 0 ? BAD : x;
}

/* k x k max or average pool with stride s. */
static struct val pool(struct bld *b, struct val x, bool max, int k, int s, enum padmode pm)
{
    struct fl_nn_pad4 p;
    struct val out;

    if (x.id < 0)
        return BAD;
    if (!resolve_pad(x, k, s, pm, &p)) {
        fl_nn_graph_fail(b->g, FL_ERR_INTERNAL, "faceapi: pool SAME padding on a dynamic size");
        return BAD;
    }
    if (!win_shape(b, x, k, s, p, x.c, &out, "pool"))
        return BAD;
    out.id =
        max ? fl_nn_maxpool(b->g, x.id, k, k, s, s, p) : fl_nn_avgpool(b->g, x.id, k, k, s, s, p);
    return out.id < 0 ? BAD : out;
}

/* Mark x as the next graph output; returns x (BAD after an error). */
static struct val set_output(struct bld *b, struct val x)
{
    if (x.id < 0)
        return BAD;
    if (fl_nn_output(b->g, x.id) < 0)
        return BAD;
    return x;
}

/* ======================== face_recognition (ResNet-29) ======================== */

/* residualLayer.ts residual: relu(conv2(relu(conv1(x))) + x), convs 3x3 SAME. */
static struct val residual(struct bld *b, struct val x, const char *prefix)
{
    char p[256];
    struct val out;

    nm(p, sizeof(p), "%s/conv1", prefix);
    out = conv_scale(b, x, p, 1, PAD_SAME, true);
    nm(p, sizeof(p), "%s/conv2", prefix);
    out = conv_scale(b, out, p, 1, PAD_SAME, false);
    return add(b, out, x, FL_NN_ACT_RELU);
}

/* residualLayer.ts residualDown: conv1 3x3 stride 2 VALID, conv2 3x3 SAME,
 * plus the zero-padded avgPool shortcut (see the top of the file). */
static struct val residual_down(struct bld *b, struct val x, const char *prefix)
{
    char p[256];
    struct val out, pooled;

    nm(p, sizeof(p), "%s/conv1", prefix);
    out = conv_scale(b, x, p, 2, PAD_VALID, true);
    nm(p, sizeof(p), "%s/conv2", prefix);
    out = conv_scale(b, out, p, 1, PAD_SAME, false);
    pooled = pool(b, x, false, 2, 2, PAD_VALID);
    if (out.id < 0 || pooled.id < 0)
        return BAD;
    if (pooled.c != out.c) {
        /* tf.concat([pooled, zeros(pooled.shape)], 3): doubles the channels */
        if (out.c != 2 * pooled.c)
            return fail_corrupt(b, "channel count not doubled", prefix);
        pooled.id = fl_nn_pad(b->g, pooled.id, (struct fl_nn_pad4){0, 0, 0, 0}, 0, pooled.c);
        pooled.c = out.c;
    }
    if (pooled.h != out.h || pooled.w != out.w) {
        /* one zero row at the bottom, then one zero column at the right */
        out.id = fl_nn_pad(b->g, out.id, (struct fl_nn_pad4){0, 0, 1, 1}, 0, 0);
        out.h++;
        out.w++;
    }
    if (pooled.id < 0 || out.id < 0)
        return BAD;
    return add(b, pooled, out, FL_NN_ACT_RELU);
}

/* FaceRecognitionNet.forwardInput after normalisation: 150x150x3 -> 128. */
static void build_recognition(struct bld *b)
{
    static const char *const blocks[] = {
        "conv32_1",      "conv32_2",  "conv32_3",      "+conv64_down",      "conv64_1",
        "conv64_2",      "conv64_3",  "+conv128_down", "conv128_1",         "conv128_2",
        "+conv256_down", "conv256_1", "conv256_2",     "+conv256_down_out",
    };
    struct val x = {fl_nn_input(b->g, 150, 150, 3), 150, 150, 3};

    if (x.id < 0)
        return;
    x = conv_scale(b, x, "conv32_down", 2, PAD_VALID, true);
    x = pool(b, x, true, 3, 2, PAD_VALID);
    for (size_t i = 0; i < FL_ARRAY_LEN(blocks); i++)
        x = blocks[i][0] == '+' ? residual_down(b, x, blocks[i] + 1) : residual(b, x, blocks[i]);
    if (x.id >= 0) {
        x.id = fl_nn_global_avgpool(b->g, x.id);
        x.h = x.w = 1;
    }
    x = fc(b, x, "fc", NULL);
    set_output(b, x);
}

/* ================= face_landmark_68(_tiny), face_expression ================= */

/* denseBlock3 / denseBlock4 of denseBlock.ts. */
static struct val dense_block(struct bld *b, struct val x, const char *prefix, int n_convs,
                              bool first)
{
    char p[256];
    struct val out1, out2, out3, out4;

    if (first) {
        nm(p, sizeof(p), "%s/conv0", prefix);
        out1 = conv_bias(b, x, p, "filters", "bias", 2, PAD_SAME, FL_NN_ACT_RELU, 0.0f);
    } else {
        nm(p, sizeof(p), "%s/conv0", prefix);
        out1 = sepconv(b, x, p, 2, PAD_SAME, FL_NN_ACT_RELU, 0.0f);
    }
    nm(p, sizeof(p), "%s/conv1", prefix);
    out2 = sepconv(b, out1, p, 1, PAD_SAME, FL_NN_ACT_NONE, 0.0f);
    nm(p, sizeof(p), "%s/conv2", prefix);
    out3 = sepconv(b, add(b, out1, out2, FL_NN_ACT_RELU), p, 1, PAD_SAME, FL_NN_ACT_NONE, 0.0f);
    if (n_convs == 3)
        return add(b, out1, add(b, out2, out3, FL_NN_ACT_NONE), FL_NN_ACT_RELU);
    nm(p, sizeof(p), "%s/conv3", prefix);
    out4 = sepconv(b, add(b, out1, add(b, out2, out3, FL_NN_ACT_NONE), FL_NN_ACT_RELU), p, 1,
                   PAD_SAME, FL_NN_ACT_NONE, 0.0f);
    return add(b, out1, add(b, out2, add(b, out3, out4, FL_NN_ACT_NONE), FL_NN_ACT_NONE),
               FL_NN_ACT_RELU);
}

/* (Tiny)FaceFeatureExtractor + FaceProcessor's FC head: 112x112x3 -> fc out. */
static void build_dense_net(struct bld *b, bool tiny)
{
    struct val x = {fl_nn_input(b->g, 112, 112, 3), 112, 112, 3};
    int n_blocks = tiny ? 3 : 4;

    if (x.id < 0)
        return;
    for (int i = 0; i < n_blocks; i++) {
        char p[16];
        nm(p, sizeof(p), "dense%d", i);
        x = dense_block(b, x, p, tiny ? 3 : 4, i == 0);
    }
    x = pool(b, x, false, tiny ? 14 : 7, 2, PAD_VALID);
    x = fc(b, x, "fc/weights", "fc");
    set_output(b, x);
}

/* ======================== age_gender (TinyXception) ======================== */

/* TinyXception reductionBlock: two separable convs and a 3x3/2 SAME max
 * pool, plus a 1x1 stride-2 conv of the (un-activated) input. */
static struct val reduction_block(struct bld *b, struct val x, const char *prefix, bool act_in)
{
    char p[256];
    struct val out = act_in ? relu(b, x) : x, exp;

    nm(p, sizeof(p), "%s/separable_conv0", prefix);
    out = sepconv(b, out, p, 1, PAD_SAME, FL_NN_ACT_RELU, 0.0f); /* relu of the next line */
    nm(p, sizeof(p), "%s/separable_conv1", prefix);
    out = sepconv(b, out, p, 1, PAD_SAME, FL_NN_ACT_NONE, 0.0f);
    out = pool(b, out, true, 3, 2, PAD_SAME);
    nm(p, sizeof(p), "%s/expansion_conv", prefix);
    exp = conv_bias(b, x, p, "filters", "bias", 2, PAD_SAME, FL_NN_ACT_NONE, 0.0f);
    return add(b, out, exp, FL_NN_ACT_NONE);
}

/* TinyXception mainBlock: three relu + separable conv, plus the input. */
static struct val main_block(struct bld *b, struct val x, const char *prefix)
{
    char p[256];
    struct val out;

    nm(p, sizeof(p), "%s/separable_conv0", prefix);
    out = sepconv(b, relu(b, x), p, 1, PAD_SAME, FL_NN_ACT_RELU, 0.0f);
    nm(p, sizeof(p), "%s/separable_conv1", prefix);
    out = sepconv(b, out, p, 1, PAD_SAME, FL_NN_ACT_RELU, 0.0f);
    nm(p, sizeof(p), "%s/separable_conv2", prefix);
    out = sepconv(b, out, p, 1, PAD_SAME, FL_NN_ACT_NONE, 0.0f);
    return add(b, out, x, FL_NN_ACT_NONE);
}

/* AgeGenderNet: TinyXception(2) + avgPool 7/2 + FC age and FC gender. */
static void build_age_gender(struct bld *b)
{
    struct val x = {fl_nn_input(b->g, 112, 112, 3), 112, 112, 3}, pooled;

    if (x.id < 0)
        return;
    x = conv_bias(b, x, "entry_flow/conv_in", "filters", "bias", 2, PAD_SAME, FL_NN_ACT_RELU, 0.0f);
    x = reduction_block(b, x, "entry_flow/reduction_block_0", false);
    x = reduction_block(b, x, "entry_flow/reduction_block_1", true);
    x = main_block(b, x, "middle_flow/main_block_0");
    x = main_block(b, x, "middle_flow/main_block_1");
    x = reduction_block(b, x, "exit_flow/reduction_block", true);
    x = sepconv(b, x, "exit_flow/separable_conv", 1, PAD_SAME, FL_NN_ACT_RELU, 0.0f);
    pooled = pool(b, x, false, 7, 2, PAD_VALID);
    set_output(b, fc(b, pooled, "fc/age/weights", "fc/age"));
    set_output(b, fc(b, pooled, "fc/gender/weights", "fc/gender"));
}

/* ============================ ssd_mobilenetv1 ============================ */

/* pointwiseConvLayer: conv (any size, SAME) + "convolution_bn_offset", ReLU6. */
static struct val ssd_pw(struct bld *b, struct val x, const char *scope, int idx, int stride)
{
    char p[128];

    nm(p, sizeof(p), "%s/Conv2d_%d_pointwise", scope, idx);
    return conv_bias(b, x, p, "weights", "convolution_bn_offset", stride, PAD_SAME, FL_NN_ACT_RELU6,
                     0.0f);
}

/* depthwiseConvLayer: depthwise 3x3 SAME + batch norm (folded), ReLU6. */
static struct val ssd_dw(struct bld *b, struct val x, int idx, int stride)
{
    const double eps = 0.0010000000474974513; /* mobileNetV1.ts */
    char p[128], fname[160];
    const float *gamma, *beta, *mean, *var;
    float *scale, *shift;
    struct val out;

    if (x.id < 0)
        return BAD;
    nm(p, sizeof(p), "MobilenetV1/Conv2d_%d_depthwise/BatchNorm", idx);
    gamma = vec(b, p, "gamma", x.c);
    beta = vec(b, p, "beta", x.c);
    mean = vec(b, p, "moving_mean", x.c);
    var = vec(b, p, "moving_variance", x.c);
    if (!gamma || !beta || !mean || !var)
        return BAD;
    scale = fl_malloc((size_t)x.c * sizeof(float));
    shift = fl_malloc((size_t)x.c * sizeof(float));
    if (!scale || !shift) {
        fl_free(scale);
        fl_free(shift);
        return fail_nomem(b);
    }
    for (int c = 0; c < x.c; c++) {
        double s = (double)gamma[c] / sqrt((double)var[c] + eps);
        double t = (double)mean[c] * s;
        scale[c] = (float)s;
        shift[c] = (float)((double)beta[c] - t);
    }
    nm(fname, sizeof(fname), "MobilenetV1/Conv2d_%d_depthwise/depthwise_weights", idx);
    out = dwconv(b, x, fname, scale, shift, stride, PAD_SAME, FL_NN_ACT_RELU6);
    fl_free(scale);
    fl_free(shift);
    return out;
}

/* SsdMobilenetv1.forwardInput up to the box and class predictors, which
 * become outputs 0-5 (box encodings) and 6-11 (class logits). */
static void build_ssd(struct bld *b)
{
    struct val x = {fl_nn_input(b->g, 512, 512, 3), 512, 512, 3}, conv11 = BAD, feat[6];
    struct val c;

    if (x.id < 0)
        return;
    x = ssd_pw(b, x, "MobilenetV1", 0, 2);
    for (int i = 1; i <= 13; i++) {
        int s = (i == 2 || i == 4 || i == 6 || i == 12) ? 2 : 1;
        x = ssd_dw(b, x, i, s);
        x = ssd_pw(b, x, "MobilenetV1", i, 1);
        if (i == 11)
            conv11 = x;
    }
    feat[0] = conv11;
    feat[1] = x;
    c = ssd_pw(b, x, "Prediction", 0, 1);
    feat[2] = c = ssd_pw(b, c, "Prediction", 1, 2);
    c = ssd_pw(b, c, "Prediction", 2, 1);
    feat[3] = c = ssd_pw(b, c, "Prediction", 3, 2);
    c = ssd_pw(b, c, "Prediction", 4, 1);
    feat[4] = c = ssd_pw(b, c, "Prediction", 5, 2);
    c = ssd_pw(b, c, "Prediction", 6, 1);
    feat[5] = ssd_pw(b, c, "Prediction", 7, 2);
    for (int kind = 0; kind < 2; kind++) {
        for (int i = 0; i < 6; i++) {
            char p[128];
            nm(p, sizeof(p), "Prediction/BoxPredictor_%d/%s", i,
               kind == 0 ? "BoxEncodingPredictor" : "ClassPredictor");
            set_output(b, conv_bias(b, feat[i], p, "weights", "biases", 1, PAD_SAME, FL_NN_ACT_NONE,
                                    0.0f));
        }
    }
}

/* =========================== tiny_face_detector =========================== */

/* TinyYolov2Base.runMobilenet with TinyFaceDetector's config (7 filter
 * sizes: conv6/conv7 absent), dynamic input size. */
static void build_tiny_detector(struct bld *b)
{
    const float leak = 0.10000000149011612f; /* leaky.ts */
    struct val x = {fl_nn_input(b->g, 0, 0, 3), 0, 0, 3};

    if (x.id < 0)
        return;
    x = conv_bias(b, x, "conv0", "filters", "bias", 1, PAD_VALID, FL_NN_ACT_LEAKY, leak);
    x = pool(b, x, true, 2, 2, PAD_SAME);
    for (int i = 1; i <= 5; i++) {
        char p[16];
        nm(p, sizeof(p), "conv%d", i);
        x = sepconv(b, x, p, 1, PAD_ONE, FL_NN_ACT_LEAKY, leak);
        x = pool(b, x, true, 2, i == 5 ? 1 : 2, PAD_SAME);
    }
    x = conv_bias(b, x, "conv8", "filters", "bias", 1, PAD_VALID, FL_NN_ACT_NONE, 0.0f);
    set_output(b, x);
}

/* ============================== Dispatch ============================== */

struct net_info {
    const char *stem;     /* face-api file stem */
    const char *model_id; /* our id, versioned by the package */
    const char *input_size, *input_default;
    const char *pre, *pre_sub, *pre_div;
    const char *outputs;
};

/* clang-format off */
static const struct net_info NETS[FL_NN_FACEAPI_NET_COUNT_] = {
    [FL_NN_FACEAPI_RECOGNITION] = {"face_recognition_model", "dlib-resnet128@" FACEAPI_VERSION,
        "150", "150", "sub_div", "122.782,117.001,104.298", "255",
        "0: descriptor {1,1,128}, not normalised"},
    [FL_NN_FACEAPI_LANDMARK68] = {"face_landmark_68_model", "landmark68@" FACEAPI_VERSION,
        "112", "112", "sub_div", "122.782,117.001,104.298", "255",
        "0: {1,1,136} x0,y0..x67,y67 relative to the input square"},
    [FL_NN_FACEAPI_LANDMARK68_TINY] = {"face_landmark_68_tiny_model",
        "landmark68-tiny@" FACEAPI_VERSION,
        "112", "112", "sub_div", "122.782,117.001,104.298", "255",
        "0: {1,1,136} x0,y0..x67,y67 relative to the input square"},
    [FL_NN_FACEAPI_AGE_GENDER] = {"age_gender_model", "age-gender-xception@" FACEAPI_VERSION,
        "112", "112", "sub_div", "122.782,117.001,104.298", "255",
        "0: age {1,1,1} years; 1: gender logits {1,1,2} (0 = male)"},
    [FL_NN_FACEAPI_EXPRESSION] = {"face_expression_model", "expression@" FACEAPI_VERSION,
        "112", "112", "sub_div", "122.782,117.001,104.298", "255",
        "0: logits {1,1,7} neutral,happy,sad,angry,fearful,disgusted,surprised"},
    [FL_NN_FACEAPI_SSD] = {"ssd_mobilenetv1_model", "ssd-mobilenetv1@" FACEAPI_VERSION,
        "512", "512", "div_sub", "1,1,1", "127.5",
        "0-5: box encodings {h,w,4a} of predictors 0-5; 6-11: class logits {h,w,3a}"},
    [FL_NN_FACEAPI_TINY_DETECTOR] = {"tiny_face_detector_model",
        "tiny-face-detector@" FACEAPI_VERSION,
        "0", "416", "sub_div", "117.001,114.697,97.404", "255",
        "0: grid {S/32,S/32,25}, channel = anchor*5 + (tx,ty,tw,th,conf)"},
};
/* clang-format on */

const char *fl_nn_faceapi_net_stem(enum fl_nn_faceapi_net net)
{
    if ((int)net < 0 || net >= FL_NN_FACEAPI_NET_COUNT_)
        return NULL;
    return NETS[net].stem;
}

/* Store the SSD anchors as base64 metadata (see faceapi.h). */
static void put_anchors(struct bld *b)
{
    const struct fl_nn_faceapi_tensor *t;
    uint8_t *raw = NULL;
    char *text = NULL;
    size_t nbytes = (size_t)FL_NN_FACEAPI_SSD_ANCHORS * 4 * 4;

    t = tensor(b, "Output/extra_dim", 3, (const int[]){1, FL_NN_FACEAPI_SSD_ANCHORS, 4});
    if (!t)
        return;
    raw = fl_malloc(nbytes);
    text = fl_malloc(fl_base64_encoded_len(nbytes) + 1);
    if (!raw || !text) {
        fail_nomem(b);
        goto out;
    }
    for (size_t i = 0; i < t->n; i++) {
        uint32_t u;
        memcpy(&u, &t->f32[i], sizeof(u));
        raw[4 * i] = (uint8_t)u;
        raw[4 * i + 1] = (uint8_t)(u >> 8);
        raw[4 * i + 2] = (uint8_t)(u >> 16);
        raw[4 * i + 3] = (uint8_t)(u >> 24);
    }
    fl_base64_encode(raw, nbytes, text);
    fl_nn_meta_set(b->g, "ssd_anchors", text);
out:
    fl_free(raw);
    fl_free(text);
}

struct fl_nn_model *fl_nn_faceapi_build(enum fl_nn_faceapi_net net,
                                        const struct fl_nn_faceapi_weights *w, struct fl_err *err)
{
    const struct net_info *ni;
    struct bld b;

    if ((int)net < 0 || net >= FL_NN_FACEAPI_NET_COUNT_ || !w) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "faceapi: bad net or weights");
        return NULL;
    }
    ni = &NETS[net];
    b.w = w;
    b.g = fl_nn_graph_new(ni->stem);
    if (!b.g) {
        fl_err_set(err, FL_ERR_NOMEM, "faceapi: out of memory");
        return NULL;
    }
    fl_nn_meta_set(b.g, "model_id", ni->model_id);
    fl_nn_meta_set(b.g, "net", ni->stem);
    fl_nn_meta_set(b.g, "input_size", ni->input_size);
    fl_nn_meta_set(b.g, "input_default", ni->input_default);
    fl_nn_meta_set(b.g, "input_layout", "NHWC RGB");
    fl_nn_meta_set(b.g, "pre", ni->pre);
    fl_nn_meta_set(b.g, "pre_sub", ni->pre_sub);
    fl_nn_meta_set(b.g, "pre_div", ni->pre_div);
    fl_nn_meta_set(b.g, "outputs", ni->outputs);
    fl_nn_meta_set(b.g, "weights_sha256", fl_nn_faceapi_weights_sha256(w));
    switch (net) {
    case FL_NN_FACEAPI_RECOGNITION:
        build_recognition(&b);
        break;
    case FL_NN_FACEAPI_LANDMARK68:
    case FL_NN_FACEAPI_EXPRESSION:
        build_dense_net(&b, false);
        break;
    case FL_NN_FACEAPI_LANDMARK68_TINY:
        build_dense_net(&b, true);
        break;
    case FL_NN_FACEAPI_AGE_GENDER:
        build_age_gender(&b);
        break;
    case FL_NN_FACEAPI_SSD:
        build_ssd(&b);
        put_anchors(&b);
        break;
    case FL_NN_FACEAPI_TINY_DETECTOR:
    default:
        build_tiny_detector(&b);
        break;
    }
    /* consumes the graph; reports the first (sticky) builder error */
    return fl_nn_model_new(b.g, err);
}

struct fl_nn_model *fl_nn_faceapi_load(enum fl_nn_faceapi_net net, const char *model_dir,
                                       struct fl_err *err)
{
    struct fl_nn_faceapi_weights *w;
    struct fl_nn_model *m;
    char path[4096];

    if ((int)net < 0 || net >= FL_NN_FACEAPI_NET_COUNT_ || !model_dir) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "faceapi: bad net or folder");
        return NULL;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s-weights_manifest.json", model_dir,
                         NETS[net].stem) >= sizeof(path)) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "faceapi: model path too long");
        return NULL;
    }
    w = fl_nn_faceapi_weights_load(path, err);
    if (!w)
        return NULL;
    m = fl_nn_faceapi_build(net, w, err);
    fl_nn_faceapi_weights_free(w);
    return m;
}

/* ============================ Pre-processing ============================ */

/* Parse "a" or "a,b,c" (count numbers) from metadata into floats, via
 * double then float (as JavaScript numbers become float32 in tfjs). */
static bool parse_floats(const char *s, float *out, int count)
{
    for (int i = 0; i < count; i++) {
        char *end;
        double v;
        if (!s)
            return false;
        v = strtod(s, &end);
        if (end == s || !isfinite(v))
            return false;
        out[i] = (float)v;
        s = end;
        if (i + 1 < count) {
            if (*s != ',')
                return false;
            s++;
        }
    }
    return *s == '\0';
}

enum fl_status fl_nn_faceapi_prep_get(const struct fl_nn_model *m,
                                      struct fl_nn_faceapi_prep *out_prep, struct fl_err *err)
{
    struct fl_nn_faceapi_prep p;
    const char *pre = fl_nn_model_meta(m, "pre");

    if (!pre || (strcmp(pre, "sub_div") != 0 && strcmp(pre, "div_sub") != 0))
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: model has no face-api preprocessing");
    p.div_first = strcmp(pre, "div_sub") == 0;
    if (!parse_floats(fl_nn_model_meta(m, "pre_sub"), p.sub, 3) ||
        !parse_floats(fl_nn_model_meta(m, "pre_div"), &p.div, 1) || p.div == 0.0f)
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: bad pre_sub/pre_div metadata");
    *out_prep = p;
    return FL_OK;
}

void fl_nn_faceapi_prep_u8(const struct fl_nn_faceapi_prep *p, const uint8_t *rgb, size_t n_pixels,
                           float *out)
{
    for (size_t i = 0; i < 3 * n_pixels; i++) {
        float v = (float)rgb[i];
        float s = p->sub[i % 3];
        out[i] = p->div_first ? v / p->div - s : (v - s) / p->div;
    }
}

void fl_nn_faceapi_prep_f32(const struct fl_nn_faceapi_prep *p, const float *rgb, size_t n_pixels,
                            float *out)
{
    for (size_t i = 0; i < 3 * n_pixels; i++) {
        float v = rgb[i];
        float s = p->sub[i % 3];
        out[i] = p->div_first ? v / p->div - s : (v - s) / p->div;
    }
}

/* ============================ SSD post-processing ============================ */

enum fl_status fl_nn_faceapi_ssd_anchors(const struct fl_nn_model *m, float *out_anchors,
                                         struct fl_err *err)
{
    const char *text = fl_nn_model_meta(m, "ssd_anchors");
    size_t want = (size_t)FL_NN_FACEAPI_SSD_ANCHORS * 4 * 4, len, n = 0;
    uint8_t *raw;
    enum fl_status rc;

    if (!text)
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: model has no ssd_anchors");
    len = strlen(text);
    if (fl_base64_decoded_max(len) < want || fl_base64_decoded_max(len) > want + 3)
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: ssd_anchors of the wrong size");
    raw = fl_malloc(fl_base64_decoded_max(len));
    if (!raw)
        return fl_err_set(err, FL_ERR_NOMEM, "faceapi: out of memory");
    rc = fl_base64_decode(text, len, raw, &n, err);
    if (rc == FL_OK && n != want)
        rc = fl_err_set(err, FL_ERR_CORRUPT, "faceapi: ssd_anchors of the wrong size");
    if (rc == FL_OK) {
        for (size_t i = 0; i < want / 4; i++) {
            uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                         (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
            memcpy(&out_anchors[i], &u, sizeof(u));
        }
    } else if (rc != FL_ERR_CORRUPT && rc != FL_ERR_NOMEM) {
        rc = fl_err_set(err, FL_ERR_CORRUPT, "faceapi: ssd_anchors is not base64");
    }
    fl_free(raw);
    return rc;
}

enum fl_status fl_nn_faceapi_ssd_decode(struct fl_nn_exec *e, const float *anchors,
                                        float *out_boxes, float *out_scores, struct fl_err *err)
{
    const float *box[6], *cls[6];
    int n_anchor[6], total = 0;

    for (int i = 0; i < 6; i++) {
        int bs[3], cs[3];
        box[i] = fl_nn_exec_output(e, i, bs);
        cls[i] = fl_nn_exec_output(e, 6 + i, cs);
        if (!box[i] || !cls[i] || bs[2] % 4 != 0 || bs[0] != cs[0] || bs[1] != cs[1] ||
            cs[2] != bs[2] / 4 * 3)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "faceapi: not SSD outputs (output %d)", i);
        n_anchor[i] = bs[0] * bs[1] * (bs[2] / 4);
        total += n_anchor[i];
    }
    if (total != FL_NN_FACEAPI_SSD_ANCHORS)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "faceapi: SSD outputs give %d anchors", total);
    for (int i = 0, k = 0; i < 6; i++) {
        for (int j = 0; j < n_anchor[i]; j++, k++) {
            /* outputLayer.ts, float32, in its order of operations */
            const float *a = anchors + 4 * (size_t)k, *v = box[i] + 4 * (size_t)j;
            float h = a[2] - a[0], w = a[3] - a[1];
            float cy = a[0] + h / 2.0f, cx = a[1] + w / 2.0f;
            float hh = expf(v[2] / 5.0f) * h / 2.0f;
            float yc = v[0] / 10.0f * h + cy;
            float hw = expf(v[3] / 5.0f) * w / 2.0f;
            float xc = v[1] / 10.0f * w + cx;
            float logit = cls[i][3 * (size_t)j + 1];
            out_boxes[4 * (size_t)k + 0] = yc - hh;
            out_boxes[4 * (size_t)k + 1] = xc - hw;
            out_boxes[4 * (size_t)k + 2] = yc + hh;
            out_boxes[4 * (size_t)k + 3] = xc + hw;
            out_scores[k] = 1.0f / (1.0f + expf(-logit));
        }
    }
    return FL_OK;
}

/* ========================= Tiny detector post-processing ========================= */

/* TinyFaceDetector's anchors (tinyFaceDetector/const.ts), in cells. */
static const double TINY_ANCHORS[5][2] = {
    {1.603231, 2.094468}, {6.041143, 7.080126}, {2.882459, 3.518061},
    {4.266906, 5.178857}, {9.041765, 10.66308},
};

/* face-api's ops/sigmoid, in double. */
static double sigmoid_d(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

size_t fl_nn_faceapi_tiny_decode(const float *grid, int g, double min_score,
                                 struct fl_nn_faceapi_tiny_box *out, size_t cap)
{
    size_t n = 0;

    for (int row = 0; row < g; row++) {
        for (int col = 0; col < g; col++) {
            for (int a = 0; a < 5; a++) {
                const float *v = grid + ((size_t)row * g + col) * 25 + (size_t)a * 5;
                double score = sigmoid_d(v[4]), cx, cy, w, h;
                if (!(score > min_score))
                    continue;
                if (n < cap) {
                    cx = (col + sigmoid_d(v[0])) / g;
                    cy = (row + sigmoid_d(v[1])) / g;
                    w = exp(v[2]) * TINY_ANCHORS[a][0] / g;
                    h = exp(v[3]) * TINY_ANCHORS[a][1] / g;
                    out[n] = (struct fl_nn_faceapi_tiny_box){cx - w / 2, cy - h / 2, w,   h,
                                                             score,      row,        col, a};
                }
                n++;
            }
        }
    }
    return n;
}
