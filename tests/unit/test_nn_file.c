/* test_nn_file.c: the .flm model file. Save -> load gives identical outputs;
 * a file assembled by hand from the format's prose spec (model.c) loads and
 * computes what it should; truncation at every offset and random byte flips
 * give FL_ERR_CORRUPT or a valid model, never a crash (run under ASan). */
#include "t.h"
#include "nn/nn_int.h"

#include <math.h>

T_MAIN_STATE;

static struct fl_rng rng;
static float W[20000], B[256];

static const struct fl_nn_pad4 P0 = {0, 0, 0, 0};
static const struct fl_nn_pad4 P1 = {1, 1, 1, 1};

/* A model with every op type. */
static struct fl_nn_model *all_ops(void)
{
    struct fl_err err = {0};
    struct fl_nn_graph *g = fl_nn_graph_new("all-ops");
    int in, c, d, s, cat;
    in = fl_nn_input(g, 9, 7, 3);
    c = fl_nn_conv2d(g, in, W, B, 8, 3, 3, 1, 1, P1, FL_NN_ACT_RELU, 0);
    d = fl_nn_dwconv2d(g, c, W + 300, B + 8, 1, 3, 3, 1, 1, P1, FL_NN_ACT_LEAKY, 0.1f);
    s = fl_nn_add(g, c, d, FL_NN_ACT_NONE, 0);
    s = fl_nn_mul(g, s, c);
    s = fl_nn_channel_affine(g, s, W + 500, NULL);
    s = fl_nn_prelu(g, s, W + 600);
    s = fl_nn_activation(g, s, FL_NN_ACT_SIGMOID, 0);
    cat = fl_nn_concat(g, s, c);
    s = fl_nn_pad(g, cat, (struct fl_nn_pad4){0, 0, 1, 1}, 1, 2);
    s = fl_nn_maxpool(g, s, 2, 2, 2, 2, P0);
    s = fl_nn_avgpool(g, s, 3, 3, 1, 1, P1);
    s = fl_nn_resize_bilinear(g, s, 6, 5, true);
    s = fl_nn_resize_bilinear(g, s, 4, 4, false);
    fl_nn_output(g, fl_nn_softmax(g, s));
    s = fl_nn_global_avgpool(g, s);
    fl_nn_output(g, fl_nn_fc(g, s, W + 1000, B, 5, FL_NN_ACT_TANH, 0));
    fl_nn_output(g, fl_nn_fc(g, cat, W + 2000, NULL, 3, FL_NN_ACT_RELU6, 0));
    fl_nn_meta_set(g, "model_id", "test/all-ops");
    fl_nn_meta_set(g, "mean", "127.5 127.5 127.5");
    return fl_nn_model_new(g, &err);
}

static char tmp_path[256];

/* Save m to a temp file and read the bytes back. */
static uint8_t *save_bytes(struct fl_nn_model *m, size_t *len)
{
    struct fl_err err = {0};
    uint8_t *data = NULL;
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/fl_test_nn_%d.flm", (int)getpid());
    if (fl_nn_model_save(m, tmp_path, &err) != FL_OK) {
        printf("# save: %s\n", err.msg);
        return NULL;
    }
    if (fl_file_read(tmp_path, (size_t)1 << 30, &data, len, &err) != FL_OK)
        return NULL;
    return data;
}

/* Run both models on the same input with backend be; outputs must be bitwise equal. */
static void check_same(struct fl_nn_model *a, struct fl_nn_model *b, enum fl_nn_backend be)
{
    struct fl_err err = {0};
    struct fl_nn_exec *ea = fl_nn_exec_new(a, 0, 0, be, 1, &err);
    struct fl_nn_exec *eb = fl_nn_exec_new(b, 0, 0, be, 1, &err);
    T_REQUIRE(ea && eb);
    for (int i = 0; i < 9 * 7 * 3; i++)
        fl_nn_exec_input(ea)[i] = fl_nn_exec_input(eb)[i] = (float)fl_rng_double(&rng) * 2 - 1;
    T_CHECK_EQ_INT(fl_nn_exec_run(ea, &err), FL_OK);
    T_CHECK_EQ_INT(fl_nn_exec_run(eb, &err), FL_OK);
    T_CHECK_EQ_INT(fl_nn_model_n_outputs(b), fl_nn_model_n_outputs(a));
    for (int o = 0; o < fl_nn_model_n_outputs(a); o++) {
        int sa[3], sb[3];
        const float *pa = fl_nn_exec_output(ea, o, sa), *pb = fl_nn_exec_output(eb, o, sb);
        T_CHECK(memcmp(sa, sb, sizeof(sa)) == 0);
        T_CHECK(memcmp(pa, pb, (size_t)sa[0] * sa[1] * sa[2] * sizeof(float)) == 0);
    }
    fl_nn_exec_free(ea);
    fl_nn_exec_free(eb);
}

static void test_roundtrip(void)
{
    struct fl_err err = {0};
    struct fl_nn_model *m = all_ops(), *l = NULL, *l2 = NULL;
    uint8_t *bytes = NULL, *bytes2 = NULL;
    size_t len = 0, len2 = 0;
    T_REQUIRE(m != NULL);
    bytes = save_bytes(m, &len);
    T_REQUIRE(bytes != NULL);
    l = fl_nn_model_load(tmp_path, &err);
    if (!l)
        printf("# load: %s\n", err.msg);
    T_CHECK(l != NULL);
    if (l) {
        T_CHECK_EQ_STR(fl_nn_model_name(l), "all-ops");
        T_CHECK_EQ_STR(fl_nn_model_meta(l, "model_id"), "test/all-ops");
        T_CHECK_EQ_STR(fl_nn_model_meta(l, "mean"), "127.5 127.5 127.5");
        T_CHECK_EQ_INT(fl_nn_model_macs(l, 0, 0), fl_nn_model_macs(m, 0, 0));
        check_same(m, l, FL_NN_BACKEND_REF);
        check_same(m, l, FL_NN_BACKEND_XNNPACK);
        /* saving the loaded model gives the same bytes */
        bytes2 = save_bytes(l, &len2);
        T_CHECK(bytes2 && len2 == len && memcmp(bytes, bytes2, len) == 0);
    }
    l2 = fl_nn_model_load_mem(bytes, len, &err);
    T_CHECK(l2 != NULL);
    fl_nn_model_unref(l2);
    /* an unaligned copy loads too */
    {
        uint8_t *u = fl_malloc(len + 1);
        T_REQUIRE(u != NULL);
        memcpy(u + 1, bytes, len);
        l2 = fl_nn_model_load_mem(u + 1, len, &err);
        T_CHECK(l2 != NULL);
        fl_nn_model_unref(l2);
        fl_free(u);
    }
    unlink(tmp_path);
    fl_free(bytes);
    fl_free(bytes2);
    fl_nn_model_unref(l);
    fl_nn_model_unref(m);
}

/* A file assembled by hand from model.c's format description: input 1x1x2,
 * FC 2 -> 1 with w = {1, 2}, bias {0.5}; output 1*3 + 2*4 + 0.5 = 11.5. */
static void put32(uint8_t *p, size_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static size_t hand_file(uint8_t *f)
{
    size_t o = 64;
    memset(f, 0, 512);
    memcpy(f, "FLNM", 4);
    put32(f, 4, 1);  /* version */
    put32(f, 8, 64); /* header size */
    put32(f, 12, 1); /* n_meta */
    put32(f, 16, 2); /* n_ops */
    put32(f, 20, 1); /* n_outputs */
    put32(f, 24, 2); /* n_blobs */
    put64(f, 32, 64);
    /* body */
    put32(f, o, 4);
    memcpy(f + o + 4, "hand", 4);
    o += 8;
    put32(f, o, 1);
    f[o + 4] = 'k';
    put32(f, o + 5, 2);
    memcpy(f + o + 9, "vv", 2);
    o += 11;
    { /* op 0: INPUT h=1 w=1 c=2, a=b=-1, blobs -1 */
        int32_t r[20] = {0, -1, -1, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1};
        memcpy(f + o, r, 80);
        o += 80;
    }
    { /* op 1: FC a=0, n=1 out, n2=2 in, act none, wblob 0, bblob 1 */
        int32_t r[20] = {3, 0, -1, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        memcpy(f + o, r, 80);
        o += 80;
    }
    put32(f, o, 1); /* output: value 1 */
    o += 4;
    put64(f, o, 0); /* blob 0 at data+0, 2 floats */
    put64(f, o + 8, 2);
    put64(f, o + 16, 64); /* blob 1 at data+64, 1 float */
    put64(f, o + 24, 1);
    o += 32;
    o = (o + 63) & ~(size_t)63; /* data_off */
    put64(f, 40, o);
    put64(f, 48, 68);
    put64(f, 56, o + 68);
    {
        float w[2] = {1, 2}, b = 0.5f;
        memcpy(f + o, w, 8);
        memcpy(f + o + 64, &b, 4);
    }
    return o + 68;
}

static void test_hand_assembled_file(void)
{
    struct fl_err err = {0};
    uint8_t f[512];
    size_t n = hand_file(f);
    struct fl_nn_model *m = fl_nn_model_load_mem(f, n, &err);
    struct fl_nn_exec *e;
    if (!m)
        printf("# %s\n", err.msg);
    T_REQUIRE(m != NULL);
    T_CHECK_EQ_STR(fl_nn_model_name(m), "hand");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "k"), "vv");
    e = fl_nn_exec_new(m, 0, 0, FL_NN_BACKEND_XNNPACK, 1, &err);
    T_REQUIRE(e != NULL);
    fl_nn_exec_input(e)[0] = 3;
    fl_nn_exec_input(e)[1] = 4;
    T_CHECK_EQ_INT(fl_nn_exec_run(e, &err), FL_OK);
    T_CHECK_NEAR(fl_nn_exec_output(e, 0, NULL)[0], 11.5, 1e-6);
    fl_nn_exec_free(e);
    fl_nn_model_unref(m);

    /* targeted corruptions of the hand file */
    for (int k = 0; k < 10; k++) {
        hand_file(f);
        switch (k) {
        case 0:
            f[0] = 'X';
            break; /* magic */
        case 1:
            put32(f, 4, 2);
            break; /* version */
        case 2:
            put64(f, 56, n + 1);
            break; /* file size */
        case 3:
            put64(f, 40 + 8, 64);
            break; /* data size */
        case 4:
            put32(f, 16, 3);
            break; /* n_ops past the body */
        case 5:
            put32(f, 64, 1000);
            break; /* name length */
        case 6:
            f[64 + 4] = 0;
            break; /* NUL in the name */
        case 7:
            put32(f, 64 + 19 + 80 + 4 * 6, 2);
            break; /* FC out 2: blob length mismatch */
        case 8:
            put32(f, 64 + 19 + 80 + 4, 1);
            break; /* FC reads itself */
        case 9:
            put32(f, 64 + 19 + 160, 7);
            break; /* output not a value */
        }
        m = fl_nn_model_load_mem(f, n, &err);
        T_CHECK(m == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
        if (m || err.code != FL_ERR_CORRUPT)
            printf("# corruption %d: accepted or wrong code (%s)\n", k, err.msg);
        fl_nn_model_unref(m);
    }
}

/* A loaded (possibly mutated) model must be usable: plan and run it with the
 * reference when its sizes are small (a flipped dimension can legitimately
 * ask for a huge network). */
static void exercise(struct fl_nn_model *m)
{
    struct fl_err err = {0};
    int(*shp)[3] = fl_malloc((size_t)m->ir.n_ops * sizeof(*shp));
    size_t total = 0;
    struct fl_nn_exec *e;
    if (!shp)
        return;
    if (fl__nn_infer_shapes(&m->ir, 0, 0, shp, NULL) != FL_OK) {
        fl_free(shp);
        return;
    }
    for (int v = 0; v < m->ir.n_ops; v++)
        total += (size_t)shp[v][0] * shp[v][1] * shp[v][2];
    fl_free(shp);
    if (total > 100000 || fl_nn_model_macs(m, 0, 0) > 5000000)
        return;
    e = fl_nn_exec_new(m, 0, 0, FL_NN_BACKEND_REF, 1, &err);
    if (e) {
        fl_nn_exec_run(e, &err);
        fl_nn_exec_free(e);
    }
}

static void test_truncation(void)
{
    struct fl_err err = {0};
    struct fl_nn_model *m = all_ops();
    size_t len = 0;
    uint8_t *bytes;
    int bad = 0;
    long base;
    T_REQUIRE(m != NULL);
    bytes = save_bytes(m, &len);
    unlink(tmp_path);
    T_REQUIRE(bytes != NULL);
    base = fl_alloc_live();
    for (size_t cut = 0; cut < len; cut += (cut < 2048 ? 1 : 61)) {
        /* a fresh exact-size copy so ASan sees reads past the cut */
        uint8_t *c = fl_malloc(cut ? cut : 1);
        struct fl_nn_model *l;
        T_REQUIRE(c != NULL);
        memcpy(c, bytes, cut);
        l = fl_nn_model_load_mem(c, cut, &err);
        if (l || err.code != FL_ERR_CORRUPT) {
            if (!bad++)
                printf("# cut at %zu: %s\n", cut, l ? "accepted" : err.msg);
        }
        fl_nn_model_unref(l);
        fl_free(c);
    }
    T_CHECK_EQ_INT(bad, 0);
    T_CHECK_EQ_INT(fl_alloc_live(), base);
    fl_free(bytes);
    fl_nn_model_unref(m);
}

static void test_byte_flips(void)
{
    struct fl_err err = {0};
    struct fl_nn_model *m = all_ops();
    size_t len = 0, data_off;
    uint8_t *bytes, *c;
    int n_valid = 0, n_corrupt = 0, n_other = 0;
    T_REQUIRE(m != NULL);
    bytes = save_bytes(m, &len);
    unlink(tmp_path);
    T_REQUIRE(bytes != NULL);
    memcpy(&data_off, bytes + 40, 8);
    c = fl_malloc(len);
    T_REQUIRE(c != NULL);
    for (int it = 0; it < 3000; it++) {
        struct fl_nn_model *l;
        int n_flips = 1 + (int)(fl_rng_next(&rng) % 3);
        memcpy(c, bytes, len);
        for (int k = 0; k < n_flips; k++) {
            size_t at = (size_t)(fl_rng_next(&rng) % data_off); /* header, body */
            if (fl_rng_next(&rng) & 1)
                c[at] ^= (uint8_t)(1u << (fl_rng_next(&rng) % 8));
            else
                c[at] = (uint8_t)fl_rng_next(&rng);
        }
        l = fl_nn_model_load_mem(c, len, &err);
        if (l) {
            n_valid++;
            exercise(l);
        } else if (err.code == FL_ERR_CORRUPT) {
            n_corrupt++;
        } else {
            if (!n_other++)
                printf("# flip gave %s: %s\n", fl_status_name(err.code), err.msg);
        }
        fl_nn_model_unref(l);
    }
    printf("# byte flips: %d valid, %d corrupt\n", n_valid, n_corrupt);
    T_CHECK_EQ_INT(n_other, 0);
    T_CHECK(n_corrupt > 1000);
    fl_free(c);
    fl_free(bytes);
    fl_nn_model_unref(m);
}

static void test_load_errors(void)
{
    struct fl_err err = {0};
    T_CHECK(fl_nn_model_load("/nonexistent/x.flm", &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_NOT_FOUND);
    T_CHECK(fl_nn_model_load_mem("FLNM", 4, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    T_CHECK(fl_nn_model_load_mem(NULL, 0, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
}

/* Out-of-memory while loading: FL_ERR_NOMEM, no leaks. */
static void test_load_alloc_torture(void)
{
    struct fl_err err = {0};
    struct fl_nn_model *m = all_ops(), *l;
    size_t len = 0;
    uint8_t *bytes;
    long base;
    T_REQUIRE(m != NULL);
    bytes = save_bytes(m, &len);
    unlink(tmp_path);
    T_REQUIRE(bytes != NULL);
    base = fl_alloc_live();
    for (long n = 1; n < 1000; n++) {
        fl_test_fail_alloc_at(n);
        l = fl_nn_model_load_mem(bytes, len, &err);
        fl_test_fail_alloc_at(0);
        if (l) {
            fl_nn_model_unref(l);
            break;
        }
        T_CHECK_EQ_INT(err.code, FL_ERR_NOMEM);
        T_CHECK_EQ_INT(fl_alloc_live(), base);
        if (err.code != FL_ERR_NOMEM || fl_alloc_live() != base) {
            printf("# n=%ld: %s\n", n, err.msg);
            break;
        }
    }
    T_CHECK_EQ_INT(fl_alloc_live(), base);
    fl_free(bytes);
    fl_nn_model_unref(m);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    fl_rng_seed(&rng, 99);
    for (size_t i = 0; i < FL_ARRAY_LEN(W); i++)
        W[i] = (float)fl_rng_double(&rng) - 0.5f;
    for (size_t i = 0; i < FL_ARRAY_LEN(B); i++)
        B[i] = (float)fl_rng_double(&rng) - 0.5f;
    T_RUN(test_roundtrip);
    T_RUN(test_hand_assembled_file);
    T_RUN(test_truncation);
    T_RUN(test_byte_flips);
    T_RUN(test_load_errors);
    T_RUN(test_load_alloc_torture);
    return t_done();
}
