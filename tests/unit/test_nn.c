/* test_nn.c: the nn graph builder, shape inference and the scalar reference
 * backend. Every expected value below was computed by hand from the op's
 * definition in nn.h (not by running this code); the XNNPACK backend is then
 * checked against this reference in test_nn_xnn.c. */
#include "t.h"
#include "nn/nn.h"

#include <math.h>

T_MAIN_STATE;

static const struct fl_nn_pad4 P0 = {0, 0, 0, 0};
static const struct fl_nn_pad4 P1 = {1, 1, 1, 1};

/* Build a model from g, run it with the reference backend on in (h x w), and
 * compare output 0 with want[n] (and its shape with want_shape). */
static void check_run(struct fl_nn_graph *g, int h, int w, const float *in, size_t n_in,
                      const float *want, size_t n, const int want_shape[3], double tol)
{
    struct fl_err err = {0};
    struct fl_nn_model *m = fl_nn_model_new(g, &err);
    struct fl_nn_exec *e = NULL;
    const float *out;
    int shp[3];
    if (!m)
        printf("# model_new: %s\n", err.msg);
    T_REQUIRE(m != NULL);
    e = fl_nn_exec_new(m, h, w, FL_NN_BACKEND_REF, 1, &err);
    if (!e)
        printf("# exec_new: %s\n", err.msg);
    if (!e) {
        fl_nn_model_unref(m);
        T_REQUIRE(e != NULL);
    }
    memcpy(fl_nn_exec_input(e), in, n_in * sizeof(float));
    T_CHECK_EQ_INT(fl_nn_exec_run(e, &err), FL_OK);
    out = fl_nn_exec_output(e, 0, shp);
    T_CHECK(out != NULL);
    if (out) {
        T_CHECK_EQ_INT(shp[0], want_shape[0]);
        T_CHECK_EQ_INT(shp[1], want_shape[1]);
        T_CHECK_EQ_INT(shp[2], want_shape[2]);
        if ((size_t)shp[0] * shp[1] * shp[2] == n) {
            for (size_t i = 0; i < n; i++)
                T_CHECK_NEAR(out[i], want[i], tol);
        }
    }
    fl_nn_exec_free(e);
    fl_nn_model_unref(m);
}

static void test_conv_3x3_pad1(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("conv");
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9], b[1] = {1};
    float want[9] = {13, 22, 17, 28, 46, 34, 25, 40, 29};
    int in, y;
    for (int i = 0; i < 9; i++)
        w[i] = 1;
    in = fl_nn_input(g, 3, 3, 1);
    y = fl_nn_conv2d(g, in, w, b, 1, 3, 3, 1, 1, P1, FL_NN_ACT_NONE, 0);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 9, want, 9, (int[3]){3, 3, 1}, 1e-5);
}

static void test_conv_ohwi_channels(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("conv");
    float x[2] = {1, 2}, w[4] = {3, 4, 5, 6}; /* OHWI: out0 = (3,4), out1 = (5,6) */
    float want[2] = {11, 17};
    int y = fl_nn_conv2d(g, fl_nn_input(g, 1, 1, 2), w, NULL, 2, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 2, want, 2, (int[3]){1, 1, 2}, 1e-6);
}

/* Asymmetric padding (top/left only) and stride 2. */
static void test_conv_stride2_asym_pad(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("conv");
    float x[16], w[4] = {1, 1, 1, 1};
    float want[4] = {0, 3, 12, 30};
    struct fl_nn_pad4 p = {1, 1, 0, 0};
    int y;
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    y = fl_nn_conv2d(g, fl_nn_input(g, 4, 4, 1), w, NULL, 1, 2, 2, 2, 2, p, FL_NN_ACT_NONE, 0);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 16, want, 4, (int[3]){2, 2, 1}, 1e-6);
}

/* Depthwise multiplier: output channel ci*mult + m reads input ci. */
static void test_dwconv_mult_order(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("dw");
    float x[2] = {1, 2}, w[4] = {10, 20, 30, 40}, b[4] = {0, 0, 0, 1};
    float want[4] = {10, 20, 60, 81};
    int y = fl_nn_dwconv2d(g, fl_nn_input(g, 1, 1, 2), w, b, 2, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 2, want, 4, (int[3]){1, 1, 4}, 1e-6);
}

/* FC flattens NHWC in h, w, c order. */
static void test_fc_flatten_order(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("fc");
    float x[4] = {1, 2, 3, 4}, w[4] = {1, 10, 100, 1000}, b[1] = {0.5f};
    float want[1] = {4321.5f};
    int y = fl_nn_fc(g, fl_nn_input(g, 1, 2, 2), w, b, 1, FL_NN_ACT_NONE, 0);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 4, want, 1, (int[3]){1, 1, 1}, 1e-3);
}

static void test_maxpool_ignores_padding(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("mp");
    float x[4] = {-1, -2, -3, -4};
    float want[4] = {-1, -1, -1, -1}; /* zero padding would give 0 */
    int y = fl_nn_maxpool(g, fl_nn_input(g, 2, 2, 1), 3, 3, 1, 1, P1);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 4, want, 4, (int[3]){2, 2, 1}, 0);
}

static void test_avgpool_excludes_padding(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("ap");
    float x[4] = {1, 2, 3, 4};
    float want[4] = {2.5f, 2.5f, 2.5f, 2.5f}; /* counting padding would give 10/9 */
    int y = fl_nn_avgpool(g, fl_nn_input(g, 2, 2, 1), 3, 3, 1, 1, P1);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 4, want, 4, (int[3]){2, 2, 1}, 1e-6);
}

/* TF SAME with stride 2 on an odd size: the extra pad goes bottom/right. */
static void test_avgpool_same_odd(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("ap");
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float want[4] = {3, 4.5f, 7.5f, 9};
    struct fl_nn_pad4 p = {0, 0, 1, 1};
    int y = fl_nn_avgpool(g, fl_nn_input(g, 3, 3, 1), 2, 2, 2, 2, p);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 9, want, 4, (int[3]){2, 2, 1}, 1e-6);
}

static void test_avgpool_valid_and_global(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("ap");
    float x[8] = {1, 10, 2, 20, 3, 30, 4, 40};
    float want[2] = {2.5f, 25};
    fl_nn_output(g, fl_nn_global_avgpool(g, fl_nn_input(g, 2, 2, 2)));
    check_run(g, 0, 0, x, 8, want, 2, (int[3]){1, 1, 2}, 1e-6);
    g = fl_nn_graph_new("ap-valid");
    fl_nn_output(g, fl_nn_avgpool(g, fl_nn_input(g, 2, 2, 2), 2, 2, 1, 1, P0));
    check_run(g, 0, 0, x, 8, want, 2, (int[3]){1, 1, 2}, 1e-6);
}

static void test_softmax_per_pixel(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("sm");
    float x[4] = {5, 5, 0, logf(3)};
    float want[4] = {0.5f, 0.5f, 0.25f, 0.75f};
    int y = fl_nn_softmax(g, fl_nn_input(g, 1, 2, 2));
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 4, want, 4, (int[3]){1, 2, 2}, 1e-6);
}

static void test_pad_space_and_channels(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("pad");
    float x[1] = {7};
    float want[8] = {0, 0, 0, 0, 0, 7, 0, 0};
    struct fl_nn_pad4 p = {1, 0, 0, 1};
    int y = fl_nn_pad(g, fl_nn_input(g, 1, 1, 1), p, 1, 0);
    fl_nn_output(g, y);
    check_run(g, 0, 0, x, 1, want, 8, (int[3]){2, 2, 2}, 0);
}

static void test_concat_channels(void)
{
    struct fl_nn_graph *g = fl_nn_graph_new("cat");
    float x[2] = {1, 2}, w[2] = {1, 1}; /* a = x (via 1x1 conv), b = dw x2 */
    float want[6] = {1, 1, 1, 2, 2, 2};
    int in = fl_nn_input(g, 1, 2, 1);
    int a = fl_nn_activation(g, in, FL_NN_ACT_NONE, 0);
    int b = fl_nn_dwconv2d(g, in, w, NULL, 2, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0);
    fl_nn_output(g, fl_nn_concat(g, a, b));
    check_run(g, 0, 0, x, 2, want, 6, (int[3]){1, 2, 3}, 0);
}

static void test_resize_half_pixel_and_legacy(void)
{
    float x[2] = {0, 1};
    float want_hp[4] = {0, 0.25f, 0.75f, 1}, want_leg[4] = {0, 0.5f, 1, 1};
    struct fl_nn_graph *g = fl_nn_graph_new("rs");
    fl_nn_output(g, fl_nn_resize_bilinear(g, fl_nn_input(g, 1, 2, 1), 1, 4, true));
    check_run(g, 0, 0, x, 2, want_hp, 4, (int[3]){1, 4, 1}, 1e-6);
    g = fl_nn_graph_new("rs");
    fl_nn_output(g, fl_nn_resize_bilinear(g, fl_nn_input(g, 1, 2, 1), 1, 4, false));
    check_run(g, 0, 0, x, 2, want_leg, 4, (int[3]){1, 4, 1}, 1e-6);
}

static void test_elementwise_and_activations(void)
{
    float x[2] = {-10, 5};
    float slope[2] = {0.1f, 0.5f}, sc[2] = {2, 3}, sh[2] = {1, -1};
    struct fl_nn_graph *g;
    int in;

    g = fl_nn_graph_new("prelu");
    fl_nn_output(g, fl_nn_prelu(g, fl_nn_input(g, 1, 1, 2), slope));
    check_run(g, 0, 0, x, 2, (float[]){-1, 5}, 2, (int[3]){1, 1, 2}, 1e-6);

    g = fl_nn_graph_new("affine");
    fl_nn_output(g, fl_nn_channel_affine(g, fl_nn_input(g, 1, 1, 2), sc, sh));
    check_run(g, 0, 0, x, 2, (float[]){-19, 14}, 2, (int[3]){1, 1, 2}, 1e-6);

    g = fl_nn_graph_new("affine-null");
    fl_nn_output(g, fl_nn_channel_affine(g, fl_nn_input(g, 1, 1, 2), NULL, sh));
    check_run(g, 0, 0, x, 2, (float[]){-9, 4}, 2, (int[3]){1, 1, 2}, 1e-6);

    g = fl_nn_graph_new("add-relu");
    in = fl_nn_input(g, 1, 1, 2);
    fl_nn_output(g, fl_nn_add(g, in, in, FL_NN_ACT_RELU, 0));
    check_run(g, 0, 0, x, 2, (float[]){0, 10}, 2, (int[3]){1, 1, 2}, 1e-6);

    g = fl_nn_graph_new("mul");
    in = fl_nn_input(g, 1, 1, 2);
    fl_nn_output(g, fl_nn_mul(g, in, in));
    check_run(g, 0, 0, x, 2, (float[]){100, 25}, 2, (int[3]){1, 1, 2}, 1e-6);

    g = fl_nn_graph_new("acts");
    in = fl_nn_input(g, 1, 1, 2);
    fl_nn_output(g, fl_nn_activation(g, in, FL_NN_ACT_LEAKY, 0.2f));
    check_run(g, 0, 0, x, 2, (float[]){-2, 5}, 2, (int[3]){1, 1, 2}, 1e-6);

    g = fl_nn_graph_new("relu6");
    fl_nn_output(g, fl_nn_activation(g, fl_nn_input(g, 1, 1, 2), FL_NN_ACT_RELU6, 0));
    check_run(g, 0, 0, (float[]){-1, 7}, 2, (float[]){0, 6}, 2, (int[3]){1, 1, 2}, 0);

    g = fl_nn_graph_new("sigmoid");
    fl_nn_output(g, fl_nn_activation(g, fl_nn_input(g, 1, 1, 2), FL_NN_ACT_SIGMOID, 0));
    check_run(g, 0, 0, (float[]){0, 2}, 2, (float[]){0.5f, 0.880797078f}, 2, (int[3]){1, 1, 2},
              1e-6);

    g = fl_nn_graph_new("tanh");
    fl_nn_output(g, fl_nn_activation(g, fl_nn_input(g, 1, 1, 2), FL_NN_ACT_TANH, 0));
    check_run(g, 0, 0, (float[]){0, 0.5f}, 2, (float[]){0, 0.462117157f}, 2, (int[3]){1, 1, 2},
              1e-6);
}

/* Dynamic input size flows through shape inference; an FC after it must fail
 * cleanly at exec_new when the flattened size does not match. */
static void test_dynamic_input(void)
{
    struct fl_err err = {0};
    struct fl_nn_graph *g = fl_nn_graph_new("dyn");
    struct fl_nn_model *m;
    struct fl_nn_exec *e;
    float w9[9], wfc[2] = {1, 2};
    int in, c, shp[3];
    for (int i = 0; i < 9; i++)
        w9[i] = 1;
    in = fl_nn_input(g, 0, 0, 1);
    c = fl_nn_conv2d(g, in, w9, NULL, 1, 3, 3, 2, 2, P1, FL_NN_ACT_NONE, 0);
    fl_nn_output(g, c);
    fl_nn_output(g, fl_nn_fc(g, fl_nn_pad(g, c, P0, 0, 1), wfc, NULL, 1, FL_NN_ACT_NONE, 0));
    m = fl_nn_model_new(g, &err);
    T_REQUIRE(m != NULL);
    /* no size given for a dynamic input */
    T_CHECK(fl_nn_exec_new(m, 0, 0, FL_NN_BACKEND_REF, 1, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    /* 5x7 -> conv stride 2 -> 3x4: FC expects 1x1x2, must fail */
    T_CHECK(fl_nn_exec_new(m, 5, 7, FL_NN_BACKEND_REF, 1, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    /* 2x1 -> 1x1: fine */
    e = fl_nn_exec_new(m, 2, 1, FL_NN_BACKEND_REF, 1, &err);
    T_REQUIRE(e != NULL);
    fl_nn_exec_input(e)[0] = 3;
    fl_nn_exec_input(e)[1] = 4;
    T_CHECK_EQ_INT(fl_nn_exec_run(e, &err), FL_OK);
    T_CHECK_NEAR(fl_nn_exec_output(e, 0, shp)[0], 7, 1e-6);
    T_CHECK_EQ_INT(shp[0], 1);
    T_CHECK_NEAR(fl_nn_exec_output(e, 1, NULL)[0], 7, 1e-6);
    fl_nn_exec_free(e);
    fl_nn_model_unref(m);

    /* the conv alone at several sizes */
    g = fl_nn_graph_new("dyn2");
    fl_nn_output(g, fl_nn_conv2d(g, fl_nn_input(g, 0, 0, 1), w9, NULL, 1, 3, 3, 2, 2, P1,
                                 FL_NN_ACT_NONE, 0));
    m = fl_nn_model_new(g, &err);
    T_REQUIRE(m != NULL);
    e = fl_nn_exec_new(m, 5, 7, FL_NN_BACKEND_REF, 1, &err);
    T_REQUIRE(e != NULL);
    fl_nn_exec_output(e, 0, shp);
    T_CHECK_EQ_INT(shp[0], 3);
    T_CHECK_EQ_INT(shp[1], 4);
    T_CHECK_EQ_INT(fl_nn_model_macs(m, 5, 7), 3 * 4 * 9);
    fl_nn_exec_free(e);
    fl_nn_model_unref(m);
}

/* A fixed-size model refuses another size. */
static void test_fixed_input_size(void)
{
    struct fl_err err = {0};
    struct fl_nn_graph *g = fl_nn_graph_new("fixed");
    struct fl_nn_model *m;
    struct fl_nn_exec *e;
    fl_nn_output(g, fl_nn_softmax(g, fl_nn_input(g, 4, 4, 3)));
    m = fl_nn_model_new(g, &err);
    T_REQUIRE(m != NULL);
    T_CHECK(fl_nn_exec_new(m, 5, 4, FL_NN_BACKEND_REF, 1, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    e = fl_nn_exec_new(m, 4, 4, FL_NN_BACKEND_REF, 1, &err);
    T_CHECK(e != NULL);
    fl_nn_exec_free(e);
    fl_nn_model_unref(m);
}

/* Bad builder calls: -1, sticky first error, model_new reports it. */
static void test_builder_errors_sticky(void)
{
    struct fl_err err = {0};
    struct fl_nn_graph *g = fl_nn_graph_new("bad");
    float w[4] = {0};
    int in = fl_nn_input(g, 4, 4, 1);
    T_CHECK(in >= 0);
    T_CHECK_EQ_INT(fl_nn_conv2d(g, 99, w, NULL, 1, 2, 2, 1, 1, P0, FL_NN_ACT_NONE, 0), -1);
    /* later valid calls fail too: the first error is sticky */
    T_CHECK_EQ_INT(fl_nn_softmax(g, in), -1);
    T_CHECK(fl_nn_model_new(g, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    T_CHECK(strstr(err.msg, "conv2d") != NULL);

    /* each of these must be refused */
    for (int k = 0; k < 12; k++) {
        int r = 0;
        g = fl_nn_graph_new("bad");
        in = fl_nn_input(g, 4, 4, 2);
        switch (k) {
        case 0: /* kernel larger than padded input */
            r = fl_nn_maxpool(g, in, 5, 5, 1, 1, P0);
            break;
        case 1: /* pool padding >= window */
            r = fl_nn_maxpool(g, in, 2, 2, 1, 1, P1 /* 1 < 2 ok */);
            if (r >= 0)
                r = fl_nn_avgpool(g, in, 1, 1, 1, 1, P1);
            break;
        case 2:
            r = fl_nn_conv2d(g, in, w, NULL, 0, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0);
            break;
        case 3:
            r = fl_nn_conv2d(g, in, w, NULL, 1, 1, 1, 0, 1, P0, FL_NN_ACT_NONE, 0);
            break;
        case 4:
            r = fl_nn_conv2d(g, in, NULL, NULL, 1, 1, 1, 1, 1, P0, FL_NN_ACT_NONE, 0);
            break;
        case 5:
            r = fl_nn_add(g, in, fl_nn_global_avgpool(g, in), FL_NN_ACT_NONE, 0);
            break;
        case 6:
            r = fl_nn_activation(g, in, (enum fl_nn_act)42, 0);
            break;
        case 7:
            r = fl_nn_input(g, 1, 1, 1); /* second input */
            break;
        case 8:
            r = fl_nn_pad(g, in, (struct fl_nn_pad4){-1, 0, 0, 0}, 0, 0);
            break;
        case 9:
            r = fl_nn_resize_bilinear(g, in, 0, 3, true);
            break;
        case 10:
            r = fl_nn_fc(g, in, NULL, NULL, 3, FL_NN_ACT_NONE, 0);
            break;
        case 11:
            r = fl_nn_prelu(g, in, NULL);
            break;
        }
        T_CHECK_EQ_INT(r, -1);
        if (r != -1)
            printf("# case %d accepted\n", k);
        T_CHECK(fl_nn_model_new(g, &err) == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    }

    /* no output / no input */
    g = fl_nn_graph_new("noout");
    fl_nn_input(g, 1, 1, 1);
    T_CHECK(fl_nn_model_new(g, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    g = fl_nn_graph_new("noin");
    T_CHECK(fl_nn_model_new(g, &err) == NULL);
    /* graph_fail from an importer */
    g = fl_nn_graph_new("imp");
    T_CHECK_EQ_INT(fl_nn_graph_fail(g, FL_ERR_CORRUPT, "bad tensor %d", 3), -1);
    T_CHECK_EQ_INT(fl_nn_input(g, 1, 1, 1), -1);
    T_CHECK(fl_nn_model_new(g, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    T_CHECK_EQ_STR(err.msg, "bad tensor 3");
    T_CHECK(fl_nn_model_new(NULL, &err) == NULL);
}

static void test_model_accessors(void)
{
    struct fl_err err = {0};
    struct fl_nn_graph *g = fl_nn_graph_new("acc");
    struct fl_nn_model *m;
    float w[2 * 3 * 3 * 4] = {0}, wfc[5 * 2] = {0};
    int in = fl_nn_input(g, 8, 6, 4);
    int c = fl_nn_conv2d(g, in, w, NULL, 2, 3, 3, 1, 1, P1, FL_NN_ACT_RELU, 0);
    int gp = fl_nn_global_avgpool(g, c);
    fl_nn_output(g, fl_nn_fc(g, gp, wfc, NULL, 5, FL_NN_ACT_NONE, 0));
    fl_nn_output(g, c);
    fl_nn_meta_set(g, "input_size", "8x6");
    fl_nn_meta_set(g, "k", "v1");
    fl_nn_meta_set(g, "k", "v2");
    m = fl_nn_model_new(g, &err);
    T_REQUIRE(m != NULL);
    T_CHECK_EQ_STR(fl_nn_model_name(m), "acc");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "input_size"), "8x6");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "k"), "v2");
    T_CHECK(fl_nn_model_meta(m, "nope") == NULL);
    T_CHECK_EQ_INT(fl_nn_model_n_outputs(m), 2);
    T_CHECK_EQ_INT(fl_nn_model_macs(m, 0, 0), 8 * 6 * 2 * 9 * 4 + 2 * 5);
    fl_nn_model_ref(m);
    fl_nn_model_unref(m);
    T_CHECK_EQ_STR(fl_nn_model_name(m), "acc");
    fl_nn_model_unref(m);
    fl_nn_model_unref(NULL);
}

/* Build a graph using every op (the torture subject). */
static struct fl_nn_model *build_all_ops(struct fl_err *err)
{
    static float w[64 * 9];
    static float b[64];
    struct fl_nn_graph *g = fl_nn_graph_new("all");
    int in, c, d, s;
    in = fl_nn_input(g, 6, 6, 2);
    c = fl_nn_conv2d(g, in, w, b, 4, 3, 3, 1, 1, P1, FL_NN_ACT_RELU, 0);
    d = fl_nn_dwconv2d(g, c, w, NULL, 1, 3, 3, 1, 1, P1, FL_NN_ACT_LEAKY, 0.1f);
    s = fl_nn_add(g, c, d, FL_NN_ACT_NONE, 0);
    s = fl_nn_mul(g, s, c);
    s = fl_nn_channel_affine(g, s, b, NULL);
    s = fl_nn_prelu(g, s, b);
    s = fl_nn_activation(g, s, FL_NN_ACT_SIGMOID, 0);
    s = fl_nn_concat(g, s, c);
    s = fl_nn_pad(g, s, P1, 1, 1);
    s = fl_nn_maxpool(g, s, 2, 2, 2, 2, P0);
    s = fl_nn_avgpool(g, s, 3, 3, 1, 1, P1);
    s = fl_nn_resize_bilinear(g, s, 5, 5, true);
    fl_nn_output(g, fl_nn_softmax(g, s));
    s = fl_nn_global_avgpool(g, s);
    fl_nn_output(g, fl_nn_fc(g, s, w, b, 3, FL_NN_ACT_TANH, 0));
    fl_nn_meta_set(g, "a", "b");
    return fl_nn_model_new(g, err);
}

/* Every allocation in the builder and model_new may fail: NOMEM, no leak. */
static void test_alloc_torture(void)
{
    long base = fl_alloc_live();
    int n_fail = 0;
    struct fl_err err = {0};
    struct fl_nn_model *m;
    for (long n = 1; n < 500; n++) {
        fl_test_fail_alloc_at(n);
        m = build_all_ops(&err);
        fl_test_fail_alloc_at(0);
        if (m) {
            T_CHECK_EQ_INT(fl_test_injected(), 0);
            fl_nn_model_unref(m);
            T_CHECK_EQ_INT(fl_alloc_live(), base);
            break;
        }
        n_fail++;
        if (err.code != FL_ERR_NOMEM || fl_alloc_live() != base) {
            printf("# n=%ld: %s\n", n, err.msg);
            T_CHECK_EQ_INT(err.code, FL_ERR_NOMEM);
            T_CHECK_EQ_INT(fl_alloc_live(), base);
            break;
        }
    }
    T_CHECK(n_fail > 10);
    /* and the same model runs */
    m = build_all_ops(&err);
    T_REQUIRE(m != NULL);
    {
        struct fl_nn_exec *e = fl_nn_exec_new(m, 0, 0, FL_NN_BACKEND_REF, 1, &err);
        int shp[3];
        T_REQUIRE(e != NULL);
        T_CHECK_EQ_INT(fl_nn_exec_run(e, &err), FL_OK);
        fl_nn_exec_output(e, 1, shp);
        T_CHECK_EQ_INT(shp[2], 3);
        fl_nn_exec_output(e, 0, shp);
        T_CHECK_EQ_INT(shp[0], 5);
        T_CHECK_EQ_INT(shp[2], 10);
        fl_nn_exec_free(e);
    }
    fl_nn_model_unref(m);
    T_CHECK_EQ_INT(fl_alloc_live(), base);
}

/* exec_new under allocation failure: NOMEM, no leak, for both backends
 * (XNNPACK's own allocations are not ours to inject). */
static void test_exec_alloc_torture(void)
{
    struct fl_err err = {0};
    struct fl_nn_model *m = build_all_ops(&err);
    long base;
    T_REQUIRE(m != NULL);
    base = fl_alloc_live();
    for (int be = 0; be < 2; be++) {
        int n_fail = 0;
        for (long n = 1; n < 500; n++) {
            struct fl_nn_exec *e;
            fl_test_fail_alloc_at(n);
            e = fl_nn_exec_new(m, 0, 0, (enum fl_nn_backend)be, 1, &err);
            fl_test_fail_alloc_at(0);
            if (e) {
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

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_conv_3x3_pad1);
    T_RUN(test_conv_ohwi_channels);
    T_RUN(test_conv_stride2_asym_pad);
    T_RUN(test_dwconv_mult_order);
    T_RUN(test_fc_flatten_order);
    T_RUN(test_maxpool_ignores_padding);
    T_RUN(test_avgpool_excludes_padding);
    T_RUN(test_avgpool_same_odd);
    T_RUN(test_avgpool_valid_and_global);
    T_RUN(test_softmax_per_pixel);
    T_RUN(test_pad_space_and_channels);
    T_RUN(test_concat_channels);
    T_RUN(test_resize_half_pixel_and_legacy);
    T_RUN(test_elementwise_and_activations);
    T_RUN(test_dynamic_input);
    T_RUN(test_fixed_input_size);
    T_RUN(test_builder_errors_sticky);
    T_RUN(test_model_accessors);
    T_RUN(test_alloc_torture);
    T_RUN(test_exec_alloc_torture);
    return t_done();
}
