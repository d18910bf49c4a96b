/* test_nn_batch.c: batched executors (fl_nn_exec_new_batch). For every op
 * (odd sizes, strides, paddings, fused activations, the FC's static-reshape
 * path, the 1x1-pool fallback, dynamic input sizes) and for the real nets
 * (dlib ResNet, MobileFaceNet, MTCNN P/R/ONet, landmark68), a batch of N
 * different inputs run in one pass must give exactly what N batch-1 runs of
 * the same backend give: bit-equal (memcmp), with both backends, N odd and
 * even, one and two threads. Bit-equality holds for XNNPACK too (checked
 * here): its kernels accumulate each output over k in the same order
 * whatever the number of rows in a GEMM tile, so the batch only changes how
 * rows are grouped, not what is summed in which order. Also: bad batch
 * sizes, and exec_new_batch under allocation failure (NOMEM, no leak). */
#include "t.h"
#include "face/face_int.h"
#include "nn/nn_int.h"

#include <stdlib.h>

T_MAIN_STATE;

static struct fl_rng rng;
static float W[100000], B[512];
static int n_items_checked;
/* check_all() also runs XNNPACK on two threads (slow on a busy 2-core
 * machine, so only for the ops whose kernels partition work by rows). */
static bool g_two_threads;

static void fill(float *p, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)fl_rng_double(&rng);
}

/* Run m on `batch` random inputs at h x w, once as a batch and once item by
 * item with a batch-1 executor of the same backend; every output of every
 * item must be bit-equal. */
static void check_batch(struct fl_nn_model *m, int h, int w, int batch, enum fl_nn_backend be,
                        int n_threads, const char *label)
{
    struct fl_err err = {0};
    struct fl_nn_exec *e1 = NULL, *eb = NULL;
    float *in = NULL;
    size_t n_in;
    int n_out = fl_nn_model_n_outputs(m);

    e1 = fl_nn_exec_new(m, h, w, be, n_threads, &err);
    if (!e1)
        printf("# %s: exec_new: %s\n", label, err.msg);
    eb = fl_nn_exec_new_batch(m, batch, h, w, be, n_threads, &err);
    if (!eb)
        printf("# %s: exec_new_batch(%d): %s\n", label, batch, err.msg);
    T_CHECK(e1 != NULL && eb != NULL);
    if (!e1 || !eb)
        goto out;
    T_CHECK_EQ_INT(fl_nn_exec_batch(eb), batch);
    T_CHECK_EQ_INT(fl_nn_exec_batch(e1), 1);
    n_in = e1->n_elems[m->ir.input];
    in = fl_nn_exec_input(eb);
    fill(in, n_in * (size_t)batch, -2.0f, 2.0f);
    T_CHECK_EQ_INT(fl_nn_exec_run(eb, &err), FL_OK);
    for (int i = 0; i < batch; i++) {
        memcpy(fl_nn_exec_input(e1), in + (size_t)i * n_in, n_in * sizeof(float));
        T_CHECK_EQ_INT(fl_nn_exec_run(e1, &err), FL_OK);
        for (int o = 0; o < n_out; o++) {
            int s1[3], sb[3];
            const float *y1 = fl_nn_exec_output(e1, o, s1);
            const float *yb = fl_nn_exec_output(eb, o, sb);
            size_t n = (size_t)s1[0] * s1[1] * s1[2];
            T_CHECK(memcmp(s1, sb, sizeof(s1)) == 0);
            yb += (size_t)i * n;
            if (memcmp(y1, yb, n * sizeof(float)) != 0) {
                size_t k = 0;
                while (k < n && y1[k] == yb[k])
                    k++;
                if (k == n) /* equal values, different bits (-0 vs 0 or NaNs) */
                    k = 0;
                printf("# %s %s batch %d item %d out %d (%dx%dx%d): [%zu] %.9g vs %.9g\n", label,
                       be == FL_NN_BACKEND_REF ? "ref" : "xnn", batch, i, o, s1[0], s1[1], s1[2], k,
                       (double)y1[k], (double)yb[k]);
                T_CHECK(!"batch item differs from its batch-1 run");
            }
        }
        n_items_checked++;
    }
out:
    fl_nn_exec_free(e1);
    fl_nn_exec_free(eb);
}

/* Both backends, batches 2, 3 and 5 (odd: the item count is no multiple of
 * any kernel's row tile), one thread; XNNPACK at batch 3 on two threads when
 * g_two_threads. */
static void check_all(struct fl_nn_model *m, int h, int w, const char *label)
{
    static const int batches[] = {2, 3, 5};
    T_REQUIRE(m != NULL);
    for (int be = 0; be < 2; be++)
        for (size_t k = 0; k < FL_ARRAY_LEN(batches); k++)
            check_batch(m, h, w, batches[k], (enum fl_nn_backend)be, 1, label);
    if (g_two_threads)
        check_batch(m, h, w, 3, FL_NN_BACKEND_XNNPACK, 2, label);
    fl_nn_model_unref(m);
}

static struct fl_nn_model *finish(struct fl_nn_graph *g, int y)
{
    struct fl_err err = {0};
    struct fl_nn_model *m;
    fl_nn_output(g, y);
    m = fl_nn_model_new(g, &err);
    if (!m)
        printf("# model_new: %s\n", err.msg);
    return m;
}

static const struct fl_nn_pad4 P0 = {0, 0, 0, 0}, P1 = {1, 1, 1, 1}, PA = {1, 0, 2, 1};

static void test_conv(void)
{
    struct fl_nn_graph *g;
    int x;
    g_two_threads = true;
    g = fl_nn_graph_new("conv3");
    x = fl_nn_input(g, 7, 9, 3);
    check_all(finish(g, fl_nn_conv2d(g, x, W, B, 5, 3, 3, 1, 1, P1, FL_NN_ACT_RELU, 0)), 0, 0,
              "conv 3x3");
    g = fl_nn_graph_new("conv1");
    x = fl_nn_input(g, 6, 5, 17);
    check_all(finish(g, fl_nn_conv2d(g, x, W, B, 19, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0)), 0, 0,
              "conv 1x1");
    g = fl_nn_graph_new("conv5s2");
    x = fl_nn_input(g, 11, 8, 4);
    check_all(finish(g, fl_nn_conv2d(g, x, W, B, 16, 5, 5, 2, 2, PA, FL_NN_ACT_RELU6, 0)), 0, 0,
              "conv 5x5 s2");
    g = fl_nn_graph_new("convleaky");
    x = fl_nn_input(g, 5, 5, 8);
    check_all(finish(g, fl_nn_conv2d(g, x, W, B, 8, 3, 3, 2, 1, P1, FL_NN_ACT_LEAKY, 0.1f)), 0, 0,
              "conv leaky");
    g = fl_nn_graph_new("convtanh");
    x = fl_nn_input(g, 5, 4, 3);
    check_all(finish(g, fl_nn_conv2d(g, x, W, B, 6, 3, 3, 1, 1, P1, FL_NN_ACT_TANH, 0)), 0, 0,
              "conv tanh");
    g_two_threads = false;
}

static void test_dwconv(void)
{
    struct fl_nn_graph *g;
    int x;
    g = fl_nn_graph_new("dw");
    x = fl_nn_input(g, 9, 7, 13);
    check_all(finish(g, fl_nn_dwconv2d(g, x, W, B, 1, 3, 3, 1, 1, P1, FL_NN_ACT_RELU, 0)), 0, 0,
              "dwconv 3x3");
    g = fl_nn_graph_new("dw2");
    x = fl_nn_input(g, 8, 9, 5);
    check_all(finish(g, fl_nn_dwconv2d(g, x, W, B, 2, 3, 3, 2, 2, PA, FL_NN_ACT_SIGMOID, 0)), 0, 0,
              "dwconv mult 2 s2");
}

static void test_fc(void)
{
    struct fl_nn_graph *g;
    int x;
    /* over a 3x4x5 input: the static-reshape (flatten) path */
    g_two_threads = true;
    g = fl_nn_graph_new("fc");
    x = fl_nn_input(g, 3, 4, 5);
    check_all(finish(g, fl_nn_fc(g, x, W, B, 7, FL_NN_ACT_NONE, 0)), 0, 0, "fc flatten");
    /* over a 1x1 input */
    g = fl_nn_graph_new("fc1");
    x = fl_nn_input(g, 1, 1, 37);
    check_all(finish(g, fl_nn_fc(g, x, W, B, 129, FL_NN_ACT_RELU, 0)), 0, 0, "fc 1x1");
    /* a dynamic input given 1x1 at exec time (in = c) */
    g = fl_nn_graph_new("fcdyn");
    x = fl_nn_input(g, 0, 0, 9);
    check_all(finish(g, fl_nn_fc(g, x, W, B, 3, FL_NN_ACT_TANH, 0)), 1, 1, "fc dynamic");
    /* conv then FC over its flattened output (as in RNet/ONet) */
    g = fl_nn_graph_new("convfc");
    x = fl_nn_input(g, 6, 6, 3);
    x = fl_nn_conv2d(g, x, W, B, 4, 3, 3, 1, 1, P0, FL_NN_ACT_NONE, 0);
    check_all(finish(g, fl_nn_fc(g, x, W, B, 10, FL_NN_ACT_NONE, 0)), 0, 0, "conv+fc");
    g_two_threads = false;
}

static void test_pools(void)
{
    struct fl_nn_graph *g;
    int x;
    g = fl_nn_graph_new("max");
    x = fl_nn_input(g, 9, 8, 6);
    check_all(finish(g, fl_nn_maxpool(g, x, 3, 3, 2, 2, PA)), 0, 0, "maxpool 3x3 s2");
    g = fl_nn_graph_new("avg");
    x = fl_nn_input(g, 7, 7, 5);
    check_all(finish(g, fl_nn_avgpool(g, x, 3, 3, 1, 1, P1)), 0, 0, "avgpool 3x3");
    /* 1x1 pools: XNNPACK refuses them, the reference kernel runs per item */
    g = fl_nn_graph_new("max1");
    x = fl_nn_input(g, 5, 6, 3);
    x = fl_nn_maxpool(g, x, 1, 1, 2, 2, P0);
    check_all(finish(g, fl_nn_conv2d(g, x, W, B, 4, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0)), 0, 0,
              "maxpool 1x1 (fallback)");
    g = fl_nn_graph_new("gavg");
    x = fl_nn_input(g, 5, 7, 11);
    check_all(finish(g, fl_nn_global_avgpool(g, x)), 0, 0, "global avgpool");
}

static void test_shape_ops(void)
{
    struct fl_nn_graph *g;
    int x, y;
    struct fl_nn_pad4 p = {1, 2, 0, 1};
    g = fl_nn_graph_new("pad");
    x = fl_nn_input(g, 4, 5, 3);
    check_all(finish(g, fl_nn_pad(g, x, p, 2, 1)), 0, 0, "pad");
    g = fl_nn_graph_new("concat");
    x = fl_nn_input(g, 4, 5, 3);
    y = fl_nn_conv2d(g, x, W, B, 5, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0);
    check_all(finish(g, fl_nn_concat(g, x, y)), 0, 0, "concat");
    g = fl_nn_graph_new("softmax");
    x = fl_nn_input(g, 3, 5, 7);
    check_all(finish(g, fl_nn_softmax(g, x)), 0, 0, "softmax");
    g = fl_nn_graph_new("resize");
    x = fl_nn_input(g, 5, 4, 3);
    check_all(finish(g, fl_nn_resize_bilinear(g, x, 9, 7, true)), 0, 0, "resize half-pixel");
    g = fl_nn_graph_new("resize2");
    x = fl_nn_input(g, 6, 7, 2);
    check_all(finish(g, fl_nn_resize_bilinear(g, x, 3, 11, false)), 0, 0, "resize legacy");
}

static void test_elementwise(void)
{
    struct fl_nn_graph *g;
    int x, y;
    g = fl_nn_graph_new("addmul");
    x = fl_nn_input(g, 5, 3, 7);
    y = fl_nn_conv2d(g, x, W, B, 7, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0);
    y = fl_nn_add(g, x, y, FL_NN_ACT_RELU, 0);
    check_all(finish(g, fl_nn_mul(g, y, x)), 0, 0, "add+mul");
    g = fl_nn_graph_new("prelu");
    x = fl_nn_input(g, 4, 6, 9);
    check_all(finish(g, fl_nn_prelu(g, x, B)), 0, 0, "prelu");
    g = fl_nn_graph_new("affine");
    x = fl_nn_input(g, 4, 3, 5);
    check_all(finish(g, fl_nn_channel_affine(g, x, W, B)), 0, 0, "channel affine");
    for (int a = FL_NN_ACT_RELU; a <= FL_NN_ACT_TANH; a++) {
        char label[32];
        g = fl_nn_graph_new("act");
        x = fl_nn_input(g, 3, 5, 6);
        snprintf(label, sizeof(label), "activation %d", a);
        check_all(finish(g, fl_nn_activation(g, x, (enum fl_nn_act)a, 0.2f)), 0, 0, label);
    }
}

/* Dynamic input size given at exec time (PNet's case), two outputs. */
static void test_dynamic_two_outputs(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("dyn");
    int x = fl_nn_input(g, 0, 0, 3), y;
    y = fl_nn_conv2d(g, x, W, B, 6, 3, 3, 1, 1, P0, FL_NN_ACT_NONE, 0);
    y = fl_nn_prelu(g, y, B);
    y = fl_nn_maxpool(g, y, 2, 2, 2, 2, P0);
    fl_nn_output(g, fl_nn_softmax(g, fl_nn_conv2d(g, y, W, B, 2, 1, 1, 1, 1, P0, 0, 0)));
    check_all(finish(g, fl_nn_conv2d(g, y, W, B, 4, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0)), 13, 9,
              "dynamic 13x9, 2 outputs");
}

static void test_bad_args(void)
{
    struct fl_err err = {0};
    struct fl_nn_graph *g = fl_nn_graph_new("bad");
    struct fl_nn_model *m;
    int x = fl_nn_input(g, 2, 2, 1);
    m = finish(g, fl_nn_activation(g, x, FL_NN_ACT_RELU, 0));
    T_REQUIRE(m != NULL);
    for (int be = 0; be < 2; be++) {
        T_CHECK(fl_nn_exec_new_batch(m, 0, 0, 0, (enum fl_nn_backend)be, 1, &err) == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
        T_CHECK(fl_nn_exec_new_batch(m, -3, 0, 0, (enum fl_nn_backend)be, 1, &err) == NULL);
        T_CHECK(fl_nn_exec_new_batch(m, FL_NN_MAX_BATCH + 1, 0, 0, (enum fl_nn_backend)be, 1,
                                     &err) == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    }
    {
        /* the largest batch works, and item b sits at b * h*w*c */
        struct fl_nn_exec *e =
            fl_nn_exec_new_batch(m, FL_NN_MAX_BATCH, 0, 0, FL_NN_BACKEND_XNNPACK, 1, &err);
        const float *y;
        T_REQUIRE(e != NULL);
        for (int i = 0; i < 4 * FL_NN_MAX_BATCH; i++)
            fl_nn_exec_input(e)[i] = (float)(i % 7) - 3.0f;
        T_CHECK_EQ_INT(fl_nn_exec_run(e, &err), FL_OK);
        y = fl_nn_exec_output(e, 0, NULL);
        for (int i = 0; i < 4 * FL_NN_MAX_BATCH; i++) {
            float want = (float)(i % 7) - 3.0f;
            if (y[i] != (want > 0 ? want : 0.0f)) {
                T_CHECK(!"relu over the largest batch");
                break;
            }
        }
        fl_nn_exec_free(e);
    }
    fl_nn_model_unref(m);
}

/* Every allocation of exec_new_batch may fail: NOMEM and no leak, both
 * backends (XNNPACK's own allocations are not ours to inject). */
static void test_alloc_torture(void)
{
    struct fl_err err = {0};
    struct fl_nn_graph *g = fl_nn_graph_new("t");
    struct fl_nn_model *m;
    long base;
    int x = fl_nn_input(g, 6, 6, 2), c, s;
    c = fl_nn_conv2d(g, x, W, B, 4, 3, 3, 1, 1, P1, FL_NN_ACT_RELU, 0);
    s = fl_nn_maxpool(g, c, 1, 1, 1, 1, P0); /* a fallback step */
    s = fl_nn_concat(g, s, c);
    fl_nn_output(g, fl_nn_softmax(g, s));
    m = finish(g, fl_nn_fc(g, s, W, B, 3, FL_NN_ACT_SIGMOID, 0));
    T_REQUIRE(m != NULL);
    base = fl_alloc_live();
    for (int be = 0; be < 2; be++) {
        int n_fail = 0;
        for (long n = 1; n < 500; n++) {
            struct fl_nn_exec *e;
            fl_test_fail_alloc_at(n);
            e = fl_nn_exec_new_batch(m, 3, 0, 0, (enum fl_nn_backend)be, 1, &err);
            fl_test_fail_alloc_at(0);
            if (e) {
                T_CHECK_EQ_INT(fl_test_injected(), 0);
                T_CHECK_EQ_INT(fl_nn_exec_run(e, &err), FL_OK);
                fl_nn_exec_free(e);
                T_CHECK_EQ_INT(fl_alloc_live(), base);
                break;
            }
            n_fail++;
            if (err.code != FL_ERR_NOMEM || fl_alloc_live() != base) {
                printf("# backend %d n=%ld: %s\n", be, n, err.msg);
                T_CHECK_EQ_INT(err.code, FL_ERR_NOMEM);
                T_CHECK_EQ_INT(fl_alloc_live(), base);
                break;
            }
        }
        T_CHECK(n_fail > 3);
    }
    fl_nn_model_unref(m);
}

/* The real nets: XNNPACK at batches 3 and 8 (two threads on RNet), the
 * reference at batch 2 (and 5 on the small MTCNN nets; it is a scalar loop,
 * ~0.25 s per dlib or MobileFaceNet item). */
static void test_real_models(void)
{
    static const struct {
        enum fl__face_net net;
        const char *name;
        int h, w;      /* exec size (0 = declared) */
        bool ref_full; /* reference backend at every batch size */
    } nets[] = {
        {FL__FACE_NET_DLIB, "dlib resnet", 0, 0, false},
        {FL__FACE_NET_MFN, "mobilefacenet", 0, 0, false},
        {FL__FACE_NET_PNET, "mtcnn pnet", 31, 23, true},
        {FL__FACE_NET_RNET, "mtcnn rnet", 0, 0, true},
        {FL__FACE_NET_ONET, "mtcnn onet", 0, 0, true},
        {FL__FACE_NET_LM68, "landmark68", 0, 0, false},
    };
    const char *root = getenv("FL_MODELS");
    char p[1024];
    if (!t_model("face-api/.fl-integrity", p, sizeof(p)) ||
        !t_model("expo/.fl-integrity", p, sizeof(p)))
        T_SKIP("models/ absent (run scripts/setup)");
    if (!root || !*root)
        root = "models";
    for (size_t i = 0; i < FL_ARRAY_LEN(nets); i++) {
        struct fl_err err = {0};
        struct fl_nn_model *m = fl__face_load_net(root, nets[i].net, &err);
        if (!m)
            printf("# %s: %s\n", nets[i].name, err.msg);
        T_REQUIRE(m != NULL);
        check_batch(m, nets[i].h, nets[i].w, 3, FL_NN_BACKEND_XNNPACK, 1, nets[i].name);
        check_batch(m, nets[i].h, nets[i].w, 8, FL_NN_BACKEND_XNNPACK, 1, nets[i].name);
        if (nets[i].net == FL__FACE_NET_RNET)
            check_batch(m, nets[i].h, nets[i].w, 2, FL_NN_BACKEND_XNNPACK, 2, nets[i].name);
        check_batch(m, nets[i].h, nets[i].w, 2, FL_NN_BACKEND_REF, 1, nets[i].name);
        if (nets[i].ref_full)
            check_batch(m, nets[i].h, nets[i].w, 5, FL_NN_BACKEND_REF, 1, nets[i].name);
        fl_nn_model_unref(m);
    }
}

static void test_report(void)
{
    printf("# %d batch items compared bit-exactly against batch-1 runs\n", n_items_checked);
    T_CHECK(n_items_checked > 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    fl_rng_seed(&rng, 20261128);
    fill(W, FL_ARRAY_LEN(W), -0.5f, 0.5f);
    fill(B, FL_ARRAY_LEN(B), -0.5f, 0.5f);
    T_RUN(test_conv);
    T_RUN(test_dwconv);
    T_RUN(test_fc);
    T_RUN(test_pools);
    T_RUN(test_shape_ops);
    T_RUN(test_elementwise);
    T_RUN(test_dynamic_two_outputs);
    T_RUN(test_bad_args);
    T_RUN(test_alloc_torture);
    T_RUN(test_real_models);
    T_RUN(test_report);
    return t_done();
}
