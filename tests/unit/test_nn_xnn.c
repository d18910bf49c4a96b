/* test_nn_xnn.c: the XNNPACK backend against the scalar reference, op by op
 * on random data with odd sizes (SIMD tails), strides 1 and 2, every padding
 * case, every activation and dynamic input sizes; a small multi-op network;
 * multi-threaded execution. Pass: NMSE <= 1e-6 (ggml's nmse = sum((a-b)^2) /
 * sum(b^2), b the reference); the worst max |a-b| is printed. */
#include "t.h"
#include "nn/nn_int.h"

#include <math.h>
#include <pthread.h>

T_MAIN_STATE;

#define NMSE_MAX 1e-6

static struct fl_rng rng;
static double worst_nmse, worst_abs;
static int n_compared; /* outputs compared */

static void fill(float *p, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)fl_rng_double(&rng);
}

/* Random weights: a pool big enough for every op below. */
static float W[200000], B[4096];

/* Run m on random input at h x w with both backends; compare every output. */
static void compare(struct fl_nn_model *m, int h, int w, int n_threads, const char *label)
{
    struct fl_err err = {0};
    struct fl_nn_exec *er = NULL, *ex = NULL;
    int shp[3], shp2[3];
    size_t n_in;
    T_REQUIRE(m != NULL);
    er = fl_nn_exec_new(m, h, w, FL_NN_BACKEND_REF, 1, &err);
    if (!er)
        printf("# %s: ref exec_new: %s\n", label, err.msg);
    ex = fl_nn_exec_new(m, h, w, FL_NN_BACKEND_XNNPACK, n_threads, &err);
    if (!ex)
        printf("# %s: xnn exec_new: %s\n", label, err.msg);
    T_CHECK(er != NULL && ex != NULL);
    if (!er || !ex)
        goto out;
    {
        const int *is = er->shape[m->ir.input]; /* internals: the concrete input shape */
        n_in = (size_t)is[0] * is[1] * is[2];
    }
    fill(fl_nn_exec_input(er), n_in, -2.0f, 2.0f);
    memcpy(fl_nn_exec_input(ex), fl_nn_exec_input(er), n_in * sizeof(float));
    T_CHECK_EQ_INT(fl_nn_exec_run(er, &err), FL_OK);
    T_CHECK_EQ_INT(fl_nn_exec_run(ex, &err), FL_OK);
    for (int o = 0; o < fl_nn_model_n_outputs(m); o++) {
        const float *a = fl_nn_exec_output(ex, o, shp), *b = fl_nn_exec_output(er, o, shp2);
        double num = 0, den = 0, mx = 0, nmse;
        size_t n;
        T_CHECK(shp[0] == shp2[0] && shp[1] == shp2[1] && shp[2] == shp2[2]);
        n = (size_t)shp[0] * shp[1] * shp[2];
        for (size_t i = 0; i < n; i++) {
            double d = (double)a[i] - (double)b[i];
            num += d * d;
            den += (double)b[i] * b[i];
            mx = fabs(d) > mx ? fabs(d) : mx;
        }
        nmse = den > 0 ? num / den : num;
        if (!(nmse <= NMSE_MAX))
            printf("# %s out %d (%dx%dx%d): nmse %.3g max abs %.3g\n", label, o, shp[0], shp[1],
                   shp[2], nmse, mx);
        T_CHECK(nmse <= NMSE_MAX);
        n_compared++;
        worst_nmse = nmse > worst_nmse ? nmse : worst_nmse;
        worst_abs = mx > worst_abs ? mx : worst_abs;
    }
out:
    fl_nn_exec_free(er);
    fl_nn_exec_free(ex);
}

/* A graph with input h x w x c (dynamic h and/or w when dyn_h / dyn_w). */
static struct fl_nn_graph *graph(int h, int w, int c, int dyn_h, int dyn_w, int *in)
{
    struct fl_nn_graph *g = fl_nn_graph_new("t");
    *in = fl_nn_input(g, dyn_h ? 0 : h, dyn_w ? 0 : w, c);
    return g;
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

static const struct fl_nn_pad4 pads[] = {
    {0, 0, 0, 0}, {1, 1, 1, 1}, {0, 0, 1, 1}, {1, 0, 2, 1}, {2, 2, 2, 2},
};

static void test_conv(void)
{
    const int cins[] = {3, 8, 17}, couts[] = {1, 16, 19}, ks[] = {1, 3, 5};
    int cases = 0;
    for (int ci = 0; ci < 3; ci++)
        for (int co = 0; co < 3; co++)
            for (int k = 0; k < 3; k++)
                for (int s = 1; s <= 2; s++)
                    for (size_t p = 0; p < FL_ARRAY_LEN(pads); p++) {
                        char label[96];
                        int in, y, act = (ci + co + k + s + (int)p) % 6;
                        struct fl_nn_graph *g;
                        if (ks[k] == 1 && p)
                            continue;
                        g = graph(11, 9, cins[ci], 0, 0, &in);
                        y = fl_nn_conv2d(g, in, W, B, couts[co], ks[k], ks[k], s, s, pads[p],
                                         (enum fl_nn_act)act, 0.15f);
                        snprintf(label, sizeof(label),
                                 "conv cin %d cout %d k %d s %d pad %zu act %d", cins[ci],
                                 couts[co], ks[k], s, p, act);
                        {
                            struct fl_nn_model *m = finish(g, y);
                            compare(m, 0, 0, 1, label);
                            fl_nn_model_unref(m);
                        }
                        cases++;
                    }
    /* non-square kernel and strides */
    {
        int in, y;
        struct fl_nn_graph *g = graph(10, 13, 5, 0, 0, &in);
        y = fl_nn_conv2d(g, in, W, B, 7, 3, 1, 2, 1, (struct fl_nn_pad4){1, 0, 1, 0},
                         FL_NN_ACT_RELU, 0);
        struct fl_nn_model *m = finish(g, y);
        compare(m, 0, 0, 1, "conv 3x1");
        fl_nn_model_unref(m);
    }
    T_CHECK(cases > 100);
}

static void test_dwconv(void)
{
    const int cs[] = {3, 17, 32}, ks[] = {3, 5};
    for (int c = 0; c < 3; c++)
        for (int mult = 1; mult <= 2; mult++)
            for (int k = 0; k < 2; k++)
                for (int s = 1; s <= 2; s++)
                    for (size_t p = 0; p < FL_ARRAY_LEN(pads); p++) {
                        char label[96];
                        int in, y, act = (c + mult + k + s + (int)p) % 6;
                        struct fl_nn_graph *g = graph(9, 12, cs[c], 0, 0, &in);
                        struct fl_nn_model *m;
                        y = fl_nn_dwconv2d(g, in, W, B, mult, ks[k], ks[k], s, s, pads[p],
                                           (enum fl_nn_act)act, 0.2f);
                        snprintf(label, sizeof(label), "dw c %d mult %d k %d s %d pad %zu act %d",
                                 cs[c], mult, ks[k], s, p, act);
                        m = finish(g, y);
                        compare(m, 0, 0, 1, label);
                        fl_nn_model_unref(m);
                    }
}

static void test_fc(void)
{
    const int dims[][3] = {{1, 1, 37}, {3, 5, 7}, {2, 2, 64}, {1, 1, 1}};
    for (size_t d = 0; d < FL_ARRAY_LEN(dims); d++)
        for (int act = 0; act <= FL_NN_ACT_TANH; act++) {
            char label[64];
            int in, y;
            struct fl_nn_graph *g = graph(dims[d][0], dims[d][1], dims[d][2], 0, 0, &in);
            struct fl_nn_model *m;
            y = fl_nn_fc(g, in, W, B, 13 + (int)d, (enum fl_nn_act)act, 0.1f);
            snprintf(label, sizeof(label), "fc %dx%dx%d act %d", dims[d][0], dims[d][1], dims[d][2],
                     act);
            m = finish(g, y);
            compare(m, 0, 0, 1, label);
            fl_nn_model_unref(m);
        }
}

static void test_pools(void)
{
    const int ks[] = {1, 2, 3};
    for (int type = 0; type < 2; type++)
        for (int k = 0; k < 3; k++)
            for (int s = 1; s <= 2; s++)
                for (size_t p = 0; p < FL_ARRAY_LEN(pads); p++) {
                    char label[64];
                    int in, y;
                    struct fl_nn_graph *g;
                    struct fl_nn_model *m;
                    const struct fl_nn_pad4 *pp = &pads[p];
                    if (pp->top >= ks[k] || pp->left >= ks[k] || pp->bottom >= ks[k] ||
                        pp->right >= ks[k])
                        continue;
                    g = graph(11, 8, 19, 0, 0, &in);
                    y = type ? fl_nn_avgpool(g, in, ks[k], ks[k], s, s, *pp)
                             : fl_nn_maxpool(g, in, ks[k], ks[k], s, s, *pp);
                    snprintf(label, sizeof(label), "%s k %d s %d pad %zu", type ? "avg" : "max",
                             ks[k], s, p);
                    m = finish(g, y);
                    compare(m, 0, 0, 1, label);
                    fl_nn_model_unref(m);
                }
    {
        /* a fallback op (1x1 pool) between two XNNPACK segments, its input
         * also read by the second segment */
        int in, a, p, y;
        struct fl_nn_graph *g = graph(9, 10, 6, 0, 0, &in);
        struct fl_nn_model *m;
        a = fl_nn_conv2d(g, in, W, B, 8, 3, 3, 1, 1, pads[1], FL_NN_ACT_RELU, 0);
        p = fl_nn_maxpool(g, a, 1, 1, 2, 2, pads[0]);
        y = fl_nn_conv2d(g, p, W + 900, B, 5, 3, 3, 1, 1, pads[1], FL_NN_ACT_NONE, 0);
        fl_nn_output(g, fl_nn_avgpool(g, a, 2, 2, 2, 2, pads[0]));
        m = finish(g, fl_nn_add(g, y,
                                fl_nn_conv2d(g, fl_nn_maxpool(g, a, 2, 2, 2, 2, pads[2]), W + 2000,
                                             B, 5, 1, 1, 1, 1, pads[0], FL_NN_ACT_NONE, 0),
                                FL_NN_ACT_NONE, 0));
        compare(m, 0, 0, 1, "fallback between segments");
        fl_nn_model_unref(m);
    }
    {
        int in;
        struct fl_nn_graph *g = graph(7, 9, 21, 0, 0, &in);
        struct fl_nn_model *m = finish(g, fl_nn_global_avgpool(g, in));
        compare(m, 0, 0, 1, "global avgpool");
        fl_nn_model_unref(m);
    }
}

static void test_elementwise(void)
{
    for (int kind = 0; kind < 4 + 6; kind++) {
        char label[32];
        int in, y = -1;
        struct fl_nn_graph *g = graph(5, 7, 13, 0, 0, &in);
        struct fl_nn_model *m;
        int a = fl_nn_dwconv2d(g, in, W, B, 1, 1, 1, 1, 1, pads[0], FL_NN_ACT_NONE, 0);
        switch (kind) {
        case 0:
            y = fl_nn_add(g, in, a, FL_NN_ACT_RELU6, 0);
            break;
        case 1:
            y = fl_nn_mul(g, in, a);
            break;
        case 2:
            y = fl_nn_channel_affine(g, in, W + 7, B + 3);
            break;
        case 3:
            y = fl_nn_prelu(g, in, W + 11);
            break;
        default:
            y = fl_nn_activation(g, in, (enum fl_nn_act)(kind - 4), 0.3f);
            break;
        }
        snprintf(label, sizeof(label), "elementwise %d", kind);
        m = finish(g, y);
        compare(m, 0, 0, 1, label);
        fl_nn_model_unref(m);
    }
    {
        int in;
        struct fl_nn_graph *g = graph(5, 7, 13, 0, 0, &in);
        struct fl_nn_model *m = finish(g, fl_nn_add(g, in, in, FL_NN_ACT_LEAKY, 0.1f));
        compare(m, 0, 0, 1, "add leaky");
        fl_nn_model_unref(m);
    }
}

static void test_shape_ops(void)
{
    const int cs[] = {1, 5, 16, 1001};
    for (size_t c = 0; c < FL_ARRAY_LEN(cs); c++) {
        int in;
        struct fl_nn_graph *g = graph(3, 5, cs[c], 0, 0, &in);
        struct fl_nn_model *m = finish(g, fl_nn_softmax(g, in));
        compare(m, 0, 0, 1, "softmax");
        fl_nn_model_unref(m);
    }
    for (size_t p = 0; p < FL_ARRAY_LEN(pads); p++)
        for (int ch = 0; ch < 3; ch++) {
            int in;
            struct fl_nn_graph *g = graph(6, 5, 7, 0, 0, &in);
            struct fl_nn_model *m = finish(g, fl_nn_pad(g, in, pads[p], ch, 2 * ch));
            compare(m, 0, 0, 1, "pad");
            fl_nn_model_unref(m);
        }
    {
        int in, a, b;
        struct fl_nn_graph *g = graph(6, 5, 7, 0, 0, &in);
        struct fl_nn_model *m;
        a = fl_nn_conv2d(g, in, W, B, 3, 1, 1, 1, 1, pads[0], FL_NN_ACT_NONE, 0);
        b = fl_nn_conv2d(g, in, W + 100, B, 9, 3, 3, 1, 1, pads[1], FL_NN_ACT_RELU, 0);
        m = finish(g, fl_nn_concat(g, a, b));
        compare(m, 0, 0, 1, "concat");
        fl_nn_model_unref(m);
    }
    {
        /* concat of the graph input with a conv of it, feeding another conv */
        int in, a, y;
        struct fl_nn_graph *g = graph(7, 6, 5, 0, 0, &in);
        struct fl_nn_model *m;
        a = fl_nn_conv2d(g, in, W, B, 4, 3, 3, 1, 1, pads[1], FL_NN_ACT_TANH, 0);
        y = fl_nn_concat(g, in, a);
        fl_nn_output(g, y);
        y = fl_nn_conv2d(g, fl_nn_concat(g, y, y), W + 500, B, 3, 1, 1, 1, 1, pads[0],
                         FL_NN_ACT_NONE, 0);
        m = finish(g, y);
        compare(m, 0, 0, 1, "concat chain");
        fl_nn_model_unref(m);
    }
    for (int hp = 0; hp <= 1; hp++) {
        const int outs[][2] = {{22, 18}, {5, 3}, {7, 11}, {1, 1}};
        for (size_t o = 0; o < FL_ARRAY_LEN(outs); o++) {
            char label[64];
            int in;
            struct fl_nn_graph *g = graph(11, 9, 6, 0, 0, &in);
            struct fl_nn_model *m =
                finish(g, fl_nn_resize_bilinear(g, in, outs[o][0], outs[o][1], hp != 0));
            snprintf(label, sizeof(label), "resize %dx%d half_pixel %d", outs[o][0], outs[o][1],
                     hp);
            compare(m, 0, 0, 1, label);
            fl_nn_model_unref(m);
        }
    }
}

static void test_dynamic(void)
{
    int in, y;
    struct fl_nn_graph *g = graph(0, 0, 3, 1, 1, &in);
    struct fl_nn_model *m;
    y = fl_nn_conv2d(g, in, W, B, 10, 3, 3, 2, 2, pads[2], FL_NN_ACT_NONE, 0);
    y = fl_nn_prelu(g, y, W + 5);
    y = fl_nn_maxpool(g, y, 2, 2, 2, 2, pads[0]);
    y = fl_nn_conv2d(g, y, W, B, 4, 1, 1, 1, 1, pads[0], FL_NN_ACT_NONE, 0);
    fl_nn_output(g, fl_nn_softmax(g, y));
    m = finish(g, y);
    compare(m, 13, 17, 1, "dynamic 13x17");
    compare(m, 12, 12, 1, "dynamic 12x12");
    compare(m, 31, 7, 1, "dynamic 31x7");
    fl_nn_model_unref(m);
}

/* conv -> dw -> add -> pool -> fc -> softmax, with a branch. */
static struct fl_nn_model *small_net(void)
{
    int in, c, d, s;
    struct fl_nn_graph *g = graph(24, 20, 3, 0, 0, &in);
    c = fl_nn_conv2d(g, in, W, B, 16, 3, 3, 2, 2, pads[2], FL_NN_ACT_RELU, 0);
    d = fl_nn_dwconv2d(g, c, W + 1000, B + 16, 1, 3, 3, 1, 1, pads[1], FL_NN_ACT_RELU6, 0);
    d = fl_nn_conv2d(g, d, W + 2000, B, 16, 1, 1, 1, 1, pads[0], FL_NN_ACT_NONE, 0);
    s = fl_nn_add(g, c, d, FL_NN_ACT_RELU, 0);
    s = fl_nn_maxpool(g, s, 3, 3, 2, 2, pads[1]);
    s = fl_nn_avgpool(g, s, 2, 2, 2, 2, pads[2]);
    fl_nn_output(g, s);
    s = fl_nn_fc(g, s, W + 3000, B, 10, FL_NN_ACT_NONE, 0);
    return finish(g, fl_nn_softmax(g, s));
}

static void test_small_network(void)
{
    struct fl_nn_model *m = small_net();
    compare(m, 0, 0, 1, "small net");
    compare(m, 0, 0, 2, "small net 2 threads");
    fl_nn_model_unref(m);
}

struct thr_arg {
    struct fl_nn_model *m;
    const float *in;
    float out[10];
    int ok;
};

static void *thr_main(void *p)
{
    struct thr_arg *a = p;
    struct fl_err err = {0};
    struct fl_nn_exec *e = fl_nn_exec_new(a->m, 0, 0, FL_NN_BACKEND_XNNPACK, 1, &err);
    a->ok = 0;
    if (!e)
        return NULL;
    for (int rep = 0; rep < 20; rep++) {
        memcpy(fl_nn_exec_input(e), a->in, 24 * 20 * 3 * sizeof(float));
        if (fl_nn_exec_run(e, &err) != FL_OK)
            goto out;
    }
    memcpy(a->out, fl_nn_exec_output(e, 1, NULL), sizeof(a->out));
    a->ok = 1;
out:
    fl_nn_exec_free(e);
    return NULL;
}

/* Two executors on one model in two threads give what one thread gives. */
static void test_threads(void)
{
    static float in[24 * 20 * 3];
    struct fl_nn_model *m = small_net();
    struct thr_arg a[3];
    pthread_t t[2];
    T_REQUIRE(m != NULL);
    fill(in, FL_ARRAY_LEN(in), -1, 1);
    for (int i = 0; i < 3; i++) {
        a[i].m = m;
        a[i].in = in;
    }
    thr_main(&a[2]);
    T_REQUIRE(a[2].ok);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, thr_main, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        T_CHECK(a[i].ok);
        T_CHECK(memcmp(a[i].out, a[2].out, sizeof(a[i].out)) == 0);
    }
    fl_nn_model_unref(m);
}

static void test_report(void)
{
    printf("# %d outputs compared; worst nmse %.3g, worst max abs %.3g\n", n_compared, worst_nmse,
           worst_abs);
    T_CHECK(n_compared > 400);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    fl_rng_seed(&rng, 1234);
    fill(W, FL_ARRAY_LEN(W), -0.5f, 0.5f);
    fill(B, FL_ARRAY_LEN(B), -0.5f, 0.5f);
    T_RUN(test_conv);
    T_RUN(test_dwconv);
    T_RUN(test_fc);
    T_RUN(test_pools);
    T_RUN(test_elementwise);
    T_RUN(test_shape_ops);
    T_RUN(test_dynamic);
    T_RUN(test_small_network);
    T_RUN(test_threads);
    T_RUN(test_report);
    return t_done();
}
