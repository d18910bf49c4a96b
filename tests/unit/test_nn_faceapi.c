/* test_nn_faceapi.c: the face-api weight manifest reader, the seven face-api
 * net builders, and their outputs against the golden vectors of
 * ../shared/golden (tfjs-wasm reference; README.md there), with both nn
 * backends. Tolerances are the golden README's suggested C tolerances.
 *
 * Independent references: the goldens (tfjs), the package checksums in the
 * golden README, raw bytes of the .bin files dequantised here by hand, and
 * hand-made manifests with known values. Models come from models/ (T_SKIP
 * when absent), goldens from ../shared (T_SKIP when absent).
 *
 * The scalar reference backend is slow, so REF runs a subset of the inputs
 * (all with FL_FACEAPI_REF_ALL=1); XNNPACK runs all of them. `FL_FACEAPI_BENCH=N` makes the timing
 * test run N forwards per net instead of 3. */
#include "t.h"
#include "nn/faceapi.h"

#include <spng.h>
#include <sys/stat.h>
#include <time.h>

T_MAIN_STATE;

#define MODEL_DIR "face-api/model"

/* ============================== Helpers ============================== */

static struct fl_nn_model *g_models[FL_NN_FACEAPI_NET_COUNT_];
static bool g_model_tried[FL_NN_FACEAPI_NET_COUNT_];

/* The built model of a net (built once per binary), or NULL when models/
 * is absent or the build failed (the failure is reported once). */
static struct fl_nn_model *model(enum fl_nn_faceapi_net net)
{
    char dir[1024];
    struct fl_err err = {0};

    if (g_model_tried[net])
        return g_models[net];
    g_model_tried[net] = true;
    if (!t_model(MODEL_DIR, dir, sizeof(dir)))
        return NULL;
    g_models[net] = fl_nn_faceapi_load(net, dir, &err);
    if (!g_models[net])
        printf("# build of %s failed: %s: %s\n", fl_nn_faceapi_net_stem(net),
               fl_status_name(err.code), err.msg);
    return g_models[net];
}

static bool models_present(void)
{
    char dir[1024];
    return t_model(MODEL_DIR "/face_recognition_model-weights_manifest.json", dir, sizeof(dir)) !=
           NULL;
}

/* Decode an 8-bit RGB PNG (colour type 2) with libspng; fl_free() the
 * result. NULL on any problem. */
static uint8_t *load_png(const char *path, int *out_w, int *out_h)
{
    uint8_t *file = NULL, *img = NULL;
    size_t file_len = 0, len = 0;
    struct spng_ihdr ihdr;
    spng_ctx *ctx = NULL;

    if (fl_file_read(path, 64u << 20, &file, &file_len, NULL) != FL_OK)
        return NULL;
    ctx = spng_ctx_new(0);
    if (!ctx || spng_set_png_buffer(ctx, file, file_len) || spng_get_ihdr(ctx, &ihdr) ||
        ihdr.color_type != SPNG_COLOR_TYPE_TRUECOLOR || ihdr.bit_depth != 8 ||
        spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &len))
        goto out;
    img = fl_malloc(len);
    if (img && spng_decode_image(ctx, img, len, SPNG_FMT_RGB8, 0)) {
        fl_free(img);
        img = NULL;
    }
    if (img) {
        *out_w = (int)ihdr.width;
        *out_h = (int)ihdr.height;
    }
out:
    spng_ctx_free(ctx);
    fl_free(file);
    return img;
}

/* A golden PNG by its path relative to shared/golden. */
static uint8_t *golden_png(const char *rel, int *w, int *h)
{
    char path[1024], full[1100];
    snprintf(full, sizeof(full), "golden/%s", rel);
    if (!t_shared(full, path, sizeof(path)))
        return NULL;
    return load_png(path, w, h);
}

/* All rows of a golden .jsonl file (shared/golden/<rel>) as one JSON array;
 * NULL when absent. */
static json_t *load_jsonl(const char *rel)
{
    char path[1024], full[1100];
    uint8_t *text = NULL;
    size_t len = 0;
    json_t *rows = NULL;

    snprintf(full, sizeof(full), "golden/%s", rel);
    if (!t_shared(full, path, sizeof(path)))
        return NULL;
    if (fl_file_read(path, 64u << 20, &text, &len, NULL) != FL_OK)
        return NULL;
    rows = json_array();
    for (char *line = (char *)text, *end; line < (char *)text + len; line = end + 1) {
        json_t *row;
        end = memchr(line, '\n', (size_t)((char *)text + len - line));
        if (!end)
            end = (char *)text + len;
        if (end == line)
            continue;
        row = json_loadb(line, (size_t)(end - line), 0, NULL);
        if (row)
            json_array_append_new(rows, row);
    }
    fl_free(text);
    return rows;
}

/* A golden little-endian float32 file; fl_free() the result. */
static float *load_f32(const char *rel, size_t *out_n)
{
    char path[1024], full[1100];
    uint8_t *raw = NULL;
    size_t len = 0;
    float *f;

    snprintf(full, sizeof(full), "golden/%s", rel);
    if (!t_shared(full, path, sizeof(path)))
        return NULL;
    if (fl_file_read(path, 64u << 20, &raw, &len, NULL) != FL_OK)
        return NULL;
    f = fl_malloc(len);
    for (size_t i = 0; f && i < len / 4; i++) {
        uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                     (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
        memcpy(&f[i], &u, 4);
    }
    *out_n = len / 4;
    fl_free(raw);
    return f;
}

static const char *backend_name(enum fl_nn_backend be)
{
    return be == FL_NN_BACKEND_REF ? "ref" : "xnnpack";
}

/* An executor for m at its declared size (or s x s when s > 0). */
static struct fl_nn_exec *exec_for(struct fl_nn_model *m, int s, enum fl_nn_backend be)
{
    struct fl_err err = {0};
    struct fl_nn_exec *e = fl_nn_exec_new(m, s, s, be, 1, &err);
    if (!e)
        printf("# exec_new(%s, %d, %s): %s: %s\n", fl_nn_model_name(m), s, backend_name(be),
               fl_status_name(err.code), err.msg);
    return e;
}

/* Normalise an RGB u8 image into the executor's input and run. */
static bool run_rgb(struct fl_nn_model *m, struct fl_nn_exec *e, const uint8_t *rgb, int w, int h)
{
    struct fl_nn_faceapi_prep prep;
    struct fl_err err = {0};

    if (fl_nn_faceapi_prep_get(m, &prep, &err) != FL_OK)
        return false;
    fl_nn_faceapi_prep_u8(&prep, rgb, (size_t)w * h, fl_nn_exec_input(e));
    if (fl_nn_exec_run(e, &err) != FL_OK) {
        printf("# run: %s: %s\n", fl_status_name(err.code), err.msg);
        return false;
    }
    return true;
}

/* Compare got[n] with a JSON array of n numbers; returns max |d|, and L2 of
 * the difference into *l2 when not NULL. */
static double diff_json(const float *got, const json_t *want, size_t n, double *l2)
{
    double mx = 0, ss = 0;
    if (!json_is_array(want) || json_array_size(want) != n)
        return INFINITY;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - json_number_value(json_array_get(want, i)));
        mx = d > mx ? d : mx;
        ss += d * d;
    }
    if (l2)
        *l2 = sqrt(ss);
    return mx;
}

/* ========================== Manifest reader ========================== */

static const struct {
    enum fl_nn_faceapi_net net;
    const char *sha_prefix; /* golden README */
    int n_outputs;
} PKGS[] = {
    {FL_NN_FACEAPI_RECOGNITION, "b413e420", 1},     {FL_NN_FACEAPI_LANDMARK68, "4611ef65", 1},
    {FL_NN_FACEAPI_LANDMARK68_TINY, "b98e9f2f", 1}, {FL_NN_FACEAPI_SSD, "28356406", 12},
    {FL_NN_FACEAPI_TINY_DETECTOR, "b7503ce7", 1},   {FL_NN_FACEAPI_AGE_GENDER, "49f92bbc", 2},
    {FL_NN_FACEAPI_EXPRESSION, "9a9840f2", 1},
};

static struct fl_nn_faceapi_weights *load_pkg(enum fl_nn_faceapi_net net, struct fl_err *err)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof(rel), MODEL_DIR "/%s-weights_manifest.json", fl_nn_faceapi_net_stem(net));
    if (!t_model(rel, path, sizeof(path)))
        return NULL;
    return fl_nn_faceapi_weights_load(path, err);
}

/* Every package loads, is fully described by its manifest, and has the
 * checksum the golden README lists. */
static void test_weights_packages(void)
{
    if (!models_present())
        T_SKIP("models/face-api absent");
    for (size_t i = 0; i < FL_ARRAY_LEN(PKGS); i++) {
        struct fl_err err = {0};
        struct fl_nn_faceapi_weights *w = load_pkg(PKGS[i].net, &err);
        T_CHECK(w != NULL);
        if (!w) {
            printf("# %s: %s\n", fl_nn_faceapi_net_stem(PKGS[i].net), err.msg);
            continue;
        }
        T_CHECK(fl_nn_faceapi_weights_count(w) > 10);
        T_CHECK_EQ_INT(fl_nn_faceapi_weights_bytes_used(w), fl_nn_faceapi_weights_bytes_total(w));
        T_CHECK(strncmp(fl_nn_faceapi_weights_sha256(w), PKGS[i].sha_prefix, 8) == 0);
        fl_nn_faceapi_weights_free(w);
    }
}

/* Dequantisation against the raw .bin bytes, done here independently:
 * the recognition net's first tensor (uint8), the SSD anchors (plain
 * float32, the last 81888 bytes) and SSD's quantised int32 constants. */
static void test_weights_dequant_raw(void)
{
    char path[1024];
    uint8_t *bin = NULL;
    size_t len = 0;
    struct fl_nn_faceapi_weights *w;
    const struct fl_nn_faceapi_tensor *t;

    if (!models_present())
        T_SKIP("models/face-api absent");
    /* conv32_down/conv/filters: [7,7,3,32] uint8, scale/min from the manifest */
    T_REQUIRE(t_model(MODEL_DIR "/face_recognition_model.bin", path, sizeof(path)));
    T_REQUIRE(fl_file_read(path, 64u << 20, &bin, &len, NULL) == FL_OK);
    w = load_pkg(FL_NN_FACEAPI_RECOGNITION, NULL);
    T_REQUIRE(w != NULL);
    t = fl_nn_faceapi_weights_get(w, "conv32_down/conv/filters");
    T_REQUIRE(t && t->rank == 4 && t->n == 7 * 7 * 3 * 32 && t->f32);
    T_CHECK_EQ_INT(t->shape[3], 32);
    for (size_t i = 0; i < t->n; i++) {
        double v = (double)bin[i] * 0.0005260649557207145;
        v += -0.07101876902229645;
        if (t->f32[i] != (float)v) {
            T_CHECK(t->f32[i] == (float)v);
            break;
        }
    }
    t = fl_nn_faceapi_weights_get(w, "fc");
    T_CHECK(t && t->rank == 2 && t->shape[0] == 256 && t->shape[1] == 128);
    T_CHECK(fl_nn_faceapi_weights_get(w, "no/such/tensor") == NULL);
    fl_nn_faceapi_weights_free(w);
    fl_free(bin);
    bin = NULL;

    T_REQUIRE(t_model(MODEL_DIR "/ssd_mobilenetv1_model.bin", path, sizeof(path)));
    T_REQUIRE(fl_file_read(path, 64u << 20, &bin, &len, NULL) == FL_OK);
    w = load_pkg(FL_NN_FACEAPI_SSD, NULL);
    T_REQUIRE(w != NULL);
    t = fl_nn_faceapi_weights_get(w, "Output/extra_dim");
    T_CHECK(t && t->n == 5118 * 4 && t->f32);
    if (t && t->f32 && len >= t->n * 4)
        T_CHECK(memcmp(t->f32, bin + len - t->n * 4, t->n * 4) == 0); /* host is LE */
    t = fl_nn_faceapi_weights_get(w, "Postprocessor/stack/1");
    T_CHECK(t && t->dtype == FL_NN_FACEAPI_I32 && t->rank == 0 && t->n == 1 && t->i32[0] == 5118);
    t = fl_nn_faceapi_weights_get(w, "Prediction/BoxPredictor_0/stack_1/1");
    T_CHECK(t && t->i32 && t->i32[0] == 3072);
    t = fl_nn_faceapi_weights_get(w, "Preprocessor/ResizeImage/size");
    T_CHECK(t && t->i32 && t->n == 2 && t->i32[0] == 512 && t->i32[1] == 512);
    t = fl_nn_faceapi_weights_get(w, "Preprocessor/mul/x");
    T_CHECK(t && t->f32 && t->rank == 0 && fabsf(t->f32[0] - 1.0f / 127.5f) < 1e-8f);
    fl_nn_faceapi_weights_free(w);
    fl_free(bin);
}

/* Hand-made manifests with known bytes: every encoding, a tensor that
 * straddles two shards, two groups. */
static void test_weights_synthetic(void)
{
    static const char json[] = "[{\"paths\":[\"a\",\"b\"],\"weights\":["
                               "{\"name\":\"u8\",\"shape\":[2,2],\"dtype\":\"float32\","
                               "\"quantization\":{\"dtype\":\"uint8\",\"scale\":0.1,\"min\":-1}},"
                               "{\"name\":\"f32\",\"shape\":[2],\"dtype\":\"float32\"},"
                               "{\"name\":\"i32q\",\"shape\":[3],\"dtype\":\"int32\","
                               "\"quantization\":{\"dtype\":\"uint8\",\"scale\":0.5,\"min\":-1}}]},"
                               "{\"paths\":[\"c\"],\"weights\":["
                               "{\"name\":\"u16\",\"shape\":[1],\"dtype\":\"float32\","
                               "\"quantization\":{\"dtype\":\"uint16\",\"scale\":2,\"min\":1}},"
                               "{\"name\":\"f16\",\"shape\":[4],\"dtype\":\"float32\","
                               "\"quantization\":{\"dtype\":\"float16\"}},"
                               "{\"name\":\"i32\",\"shape\":[],\"dtype\":\"int32\"}]}]";
    /* group 0: u8 (4 bytes) f32 (8 bytes: 1.5f, -2.0f) i32q (3 bytes: 0,1,3);
     * shard a has 6 bytes, so f32 straddles a and b */
    static const uint8_t a[6] = {0, 10, 20, 255, 0x00, 0x00};
    static const uint8_t bb[9] = {0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0, 1, 3};
    /* group 1: u16 = 300; f16 = 1.0, -2.0, 2^-24 (subnormal), inf; i32 = -7 */
    static const uint8_t c[2 + 8 + 4] = {0x2c, 0x01, 0x00, 0x3c, 0x00, 0xc0, 0x01,
                                         0x00, 0x00, 0x7c, 0xf9, 0xff, 0xff, 0xff};
    const void *shards[3] = {a, bb, c};
    size_t lens[3] = {sizeof(a), sizeof(bb), sizeof(c)};
    struct fl_err err = {0};
    struct fl_nn_faceapi_weights *w;
    const struct fl_nn_faceapi_tensor *t;

    w = fl_nn_faceapi_weights_load_mem(json, strlen(json), shards, lens, 3, &err);
    T_REQUIRE(w != NULL);
    T_CHECK_EQ_INT(fl_nn_faceapi_weights_count(w), 6);
    T_CHECK_EQ_INT(fl_nn_faceapi_weights_bytes_used(w), 29);
    T_CHECK_EQ_INT(fl_nn_faceapi_weights_bytes_total(w), 29);
    t = fl_nn_faceapi_weights_get(w, "u8");
    T_REQUIRE(t && t->f32 && t->n == 4);
    T_CHECK(t->f32[0] == -1.0f);
    T_CHECK(t->f32[1] == (float)(10 * 0.1 - 1));
    T_CHECK(t->f32[2] == (float)(20 * 0.1 - 1));
    T_CHECK(t->f32[3] == (float)(255 * 0.1 - 1));
    t = fl_nn_faceapi_weights_get(w, "f32");
    T_REQUIRE(t && t->f32 && t->n == 2);
    T_CHECK(t->f32[0] == 1.5f && t->f32[1] == -2.0f);
    t = fl_nn_faceapi_weights_get(w, "i32q"); /* round(-1, -0.5, 0.5) half up */
    T_REQUIRE(t && t->i32 && t->n == 3);
    T_CHECK(t->i32[0] == -1 && t->i32[1] == 0 && t->i32[2] == 1);
    t = fl_nn_faceapi_weights_get(w, "u16");
    T_REQUIRE(t && t->f32);
    T_CHECK(t->f32[0] == 601.0f);
    t = fl_nn_faceapi_weights_get(w, "f16");
    T_REQUIRE(t && t->f32 && t->n == 4);
    T_CHECK(t->f32[0] == 1.0f && t->f32[1] == -2.0f && t->f32[2] == 0x1p-24f);
    T_CHECK(isinf(t->f32[3]) && t->f32[3] > 0);
    t = fl_nn_faceapi_weights_get(w, "i32");
    T_REQUIRE(t && t->i32 && t->rank == 0 && t->n == 1);
    T_CHECK(t->i32[0] == -7);
    T_CHECK(fl_nn_faceapi_weights_at(w, 0) == fl_nn_faceapi_weights_get(w, "u8"));
    fl_nn_faceapi_weights_free(w);
}

/* Malformed manifests are refused with the right code, never a crash. */
static void test_weights_corrupt(void)
{
    static const struct {
        const char *json;
        enum fl_status want;
    } cases[] = {
        {"{}", FL_ERR_CORRUPT},
        {"[]", FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"]}]", FL_ERR_CORRUPT},
        {"[{\"paths\":[1],\"weights\":[]}]", FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"shape\":[1],\"dtype\":\"float32\"}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[-1],\"dtype\":\"float32\"}]}"
         "]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[1.5],\"dtype\":\"float32\"}]}"
         "]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[65536,65536,65536,65536],"
         "\"dtype\":\"float32\"}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[1,1,1,1,1,1,1],"
         "\"dtype\":\"float32\"}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[1],\"dtype\":\"string\"}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[1],\"dtype\":\"float32\","
         "\"quantization\":{\"dtype\":\"int4\"}}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[1],\"dtype\":\"float32\","
         "\"quantization\":{\"dtype\":\"uint8\",\"scale\":1}}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[1],\"dtype\":\"int32\","
         "\"quantization\":{\"dtype\":\"float16\"}}]}]",
         FL_ERR_CORRUPT},
        /* 8 float32 = 32 bytes, shard has 16 */
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[8],\"dtype\":\"float32\"}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[1],\"dtype\":\"float32\"},"
         "{\"name\":\"x\",\"shape\":[1],\"dtype\":\"float32\"}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\"],\"weights\":[{\"name\":\"x\",\"shape\":[1],\"dtype\":\"int32\","
         "\"quantization\":{\"dtype\":\"uint8\",\"scale\":1e300,\"min\":0}}]}]",
         FL_ERR_CORRUPT},
        {"[{\"paths\":[\"a\",\"b\"],\"weights\":[]}]", FL_ERR_INVALID_ARG}, /* 2 paths, 1 shard */
        {"[{\"paths\":[\"a\"],\"weights\":[] ", FL_ERR_CORRUPT},
    };
    static const uint8_t shard[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const void *shards[1] = {shard};
    size_t lens[1] = {sizeof(shard)};

    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        struct fl_err err = {0};
        struct fl_nn_faceapi_weights *w = fl_nn_faceapi_weights_load_mem(
            cases[i].json, strlen(cases[i].json), shards, lens, 1, &err);
        T_CHECK(w == NULL);
        if (w || err.code != cases[i].want)
            printf("# case %zu: got %s (%s)\n", i, fl_status_name(err.code), err.msg);
        T_CHECK_EQ_INT(err.code, cases[i].want);
        fl_nn_faceapi_weights_free(w);
    }
}

/* The real tiny detector package with its shard cut at many lengths and
 * its manifest mutated at random: CORRUPT or OK, never a crash or a leak
 * (run under ASan). */
static void test_weights_truncated_and_fuzzed(void)
{
    char mpath[1024], bpath[1024];
    uint8_t *json = NULL, *bin = NULL;
    size_t json_len = 0, bin_len = 0;
    long live = fl_alloc_live();
    struct fl_rng rng;
    int n_ok = 0;

    if (!t_model(MODEL_DIR "/tiny_face_detector_model-weights_manifest.json", mpath,
                 sizeof(mpath)) ||
        !t_model(MODEL_DIR "/tiny_face_detector_model.bin", bpath, sizeof(bpath)))
        T_SKIP("models/face-api absent");
    T_REQUIRE(fl_file_read(mpath, 1u << 20, &json, &json_len, NULL) == FL_OK);
    T_REQUIRE(fl_file_read(bpath, 16u << 20, &bin, &bin_len, NULL) == FL_OK);
    for (size_t cut = 0; cut < bin_len; cut += 997) {
        const void *shards[1] = {bin};
        size_t lens[1] = {cut};
        struct fl_err err = {0};
        struct fl_nn_faceapi_weights *w =
            fl_nn_faceapi_weights_load_mem((const char *)json, json_len, shards, lens, 1, &err);
        T_CHECK(w == NULL && err.code == FL_ERR_CORRUPT);
        fl_nn_faceapi_weights_free(w);
    }
    fl_rng_seed(&rng, 42);
    for (int iter = 0; iter < 300; iter++) {
        static const char alphabet[] = "[]{}\",:0123456789-.eE abcxyz";
        uint8_t *m = fl_malloc(json_len);
        const void *shards[1] = {bin};
        size_t lens[1] = {bin_len};
        struct fl_err err = {0};
        struct fl_nn_faceapi_weights *w;
        T_REQUIRE(m != NULL);
        memcpy(m, json, json_len);
        for (int k = 0; k < 1 + (int)(fl_rng_next(&rng) % 4); k++)
            m[fl_rng_next(&rng) % json_len] =
                (uint8_t)alphabet[fl_rng_next(&rng) % (sizeof(alphabet) - 1)];
        w = fl_nn_faceapi_weights_load_mem((const char *)m, json_len, shards, lens, 1, &err);
        if (w) {
            /* what still loads must build or be refused, never crash */
            struct fl_nn_model *mod = fl_nn_faceapi_build(FL_NN_FACEAPI_TINY_DETECTOR, w, &err);
            T_CHECK(mod != NULL || err.code == FL_ERR_CORRUPT);
            n_ok++;
            fl_nn_model_unref(mod);
            fl_nn_faceapi_weights_free(w);
        } else {
            T_CHECK(err.code == FL_ERR_CORRUPT || err.code == FL_ERR_INVALID_ARG);
        }
        fl_free(m);
    }
    printf("# fuzz: %d of 300 mutated manifests still loaded\n", n_ok);
    fl_free(json);
    fl_free(bin);
    T_CHECK_EQ_INT(fl_alloc_live(), live);
}

/* Shard paths cannot leave the manifest's folder; a missing shard is
 * NOT_FOUND. */
static void test_weights_paths(void)
{
    char dir[] = "/tmp/fl_faceapi_XXXXXX", path[256];
    static const char *const bad[] = {"../x.bin", "/etc/passwd", "a/../../x.bin", ""};
    struct fl_err err = {0};
    FILE *f;

    T_REQUIRE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/m.json", dir);
    for (size_t i = 0; i < FL_ARRAY_LEN(bad); i++) {
        f = fopen(path, "w");
        T_REQUIRE(f != NULL);
        fprintf(f, "[{\"paths\":[\"%s\"],\"weights\":[]}]", bad[i]);
        fclose(f);
        T_CHECK(fl_nn_faceapi_weights_load(path, &err) == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    }
    f = fopen(path, "w");
    T_REQUIRE(f != NULL);
    fprintf(f, "[{\"paths\":[\"missing.bin\"],\"weights\":[]}]");
    fclose(f);
    T_CHECK(fl_nn_faceapi_weights_load(path, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_NOT_FOUND);
    unlink(path);
    rmdir(dir);
    T_CHECK(fl_nn_faceapi_weights_load("/nonexistent/m.json", &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_NOT_FOUND);
}

/* ============================== Builders ============================== */

/* All seven nets build, carry their metadata and output count. */
static void test_build_all(void)
{
    if (!models_present())
        T_SKIP("models/face-api absent");
    for (size_t i = 0; i < FL_ARRAY_LEN(PKGS); i++) {
        struct fl_nn_model *m = model(PKGS[i].net);
        struct fl_nn_faceapi_prep prep;
        T_CHECK(m != NULL);
        if (!m)
            continue;
        T_CHECK_EQ_INT(fl_nn_model_n_outputs(m), PKGS[i].n_outputs);
        T_CHECK(fl_nn_model_meta(m, "model_id") != NULL);
        T_CHECK(strstr(fl_nn_model_meta(m, "model_id"), "@face-api-1.7.15") != NULL);
        T_CHECK_EQ_STR(fl_nn_model_meta(m, "net"), fl_nn_faceapi_net_stem(PKGS[i].net));
        T_CHECK(strncmp(fl_nn_model_meta(m, "weights_sha256"), PKGS[i].sha_prefix, 8) == 0);
        T_CHECK(fl_nn_faceapi_prep_get(m, &prep, NULL) == FL_OK);
    }
    if (model(FL_NN_FACEAPI_RECOGNITION)) {
        struct fl_nn_model *m = model(FL_NN_FACEAPI_RECOGNITION);
        T_CHECK_EQ_STR(fl_nn_model_meta(m, "model_id"), "dlib-resnet128@face-api-1.7.15");
        T_CHECK_EQ_STR(fl_nn_model_meta(m, "input_size"), "150");
    }
}

/* Multiply-accumulates per forward against MODELS.md (counted there with
 * tf.profile on the tfjs nets): an independent check of the layer shapes. */
static void test_build_macs(void)
{
    static const struct {
        enum fl_nn_faceapi_net net;
        int size;
        double mmacs;
    } want[] = {
        {FL_NN_FACEAPI_RECOGNITION, 0, 271},      {FL_NN_FACEAPI_LANDMARK68, 0, 51.6},
        {FL_NN_FACEAPI_LANDMARK68_TINY, 0, 28.7}, {FL_NN_FACEAPI_AGE_GENDER, 0, 97},
        {FL_NN_FACEAPI_EXPRESSION, 0, 51.5},      {FL_NN_FACEAPI_SSD, 0, 3140},
        {FL_NN_FACEAPI_TINY_DETECTOR, 416, 199},  {FL_NN_FACEAPI_TINY_DETECTOR, 608, 425},
    };

    if (!models_present())
        T_SKIP("models/face-api absent");
    for (size_t i = 0; i < FL_ARRAY_LEN(want); i++) {
        struct fl_nn_model *m = model(want[i].net);
        double got;
        T_REQUIRE(m != NULL);
        got = (double)fl_nn_model_macs(m, want[i].size, want[i].size) / 1e6;
        printf("# %s%s: %.1f M MACs (MODELS.md %.1f M)\n", fl_nn_faceapi_net_stem(want[i].net),
               want[i].size == 416   ? " @416"
               : want[i].size == 608 ? " @608"
                                     : "",
               got, want[i].mmacs);
        T_CHECK(fabs(got - want[i].mmacs) <= 0.01 * want[i].mmacs);
    }
    if (model(FL_NN_FACEAPI_TINY_DETECTOR))
        T_CHECK_EQ_STR(fl_nn_model_meta(model(FL_NN_FACEAPI_TINY_DETECTOR), "input_size"), "0");
}

/* The anchors survive the trip through metadata bit for bit. */
static void test_ssd_anchors_meta(void)
{
    struct fl_nn_faceapi_weights *w;
    const struct fl_nn_faceapi_tensor *t;
    float *anchors;

    if (!models_present() || !model(FL_NN_FACEAPI_SSD))
        T_SKIP("models/face-api absent");
    w = load_pkg(FL_NN_FACEAPI_SSD, NULL);
    T_REQUIRE(w != NULL);
    t = fl_nn_faceapi_weights_get(w, "Output/extra_dim");
    anchors = fl_malloc(sizeof(float) * 4 * FL_NN_FACEAPI_SSD_ANCHORS);
    T_REQUIRE(t && anchors);
    T_CHECK(fl_nn_faceapi_ssd_anchors(model(FL_NN_FACEAPI_SSD), anchors, NULL) == FL_OK);
    T_CHECK(memcmp(anchors, t->f32, sizeof(float) * 4 * FL_NN_FACEAPI_SSD_ANCHORS) == 0);
    T_CHECK(fl_nn_faceapi_ssd_anchors(model(FL_NN_FACEAPI_TINY_DETECTOR), anchors, NULL) ==
            FL_ERR_CORRUPT);
    fl_free(anchors);
    fl_nn_faceapi_weights_free(w);
}

/* Every net survives a .flm save/load: same metadata (SSD anchors
 * included) and bit-identical outputs on a pseudo-random input. */
static void test_flm_roundtrip(void)
{
    char dir[] = "/tmp/fl_faceapi_flm_XXXXXX", path[256];
    struct fl_rng rng;

    if (!models_present())
        T_SKIP("models/face-api absent");
    T_REQUIRE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/m.flm", dir);
    fl_rng_seed(&rng, 7);
    for (size_t i = 0; i < FL_ARRAY_LEN(PKGS); i++) {
        struct fl_nn_model *m = model(PKGS[i].net), *m2;
        struct fl_nn_exec *e1, *e2;
        struct fl_err err = {0};
        int s = PKGS[i].net == FL_NN_FACEAPI_TINY_DETECTOR ? 224 : 0;
        struct stat st;
        T_REQUIRE(m != NULL);
        T_REQUIRE(fl_nn_model_save(m, path, &err) == FL_OK);
        m2 = fl_nn_model_load(path, &err);
        T_REQUIRE(m2 != NULL);
        T_CHECK_EQ_STR(fl_nn_model_meta(m2, "model_id"), fl_nn_model_meta(m, "model_id"));
        T_CHECK_EQ_STR(fl_nn_model_meta(m2, "pre_sub"), fl_nn_model_meta(m, "pre_sub"));
        if (PKGS[i].net == FL_NN_FACEAPI_SSD)
            T_CHECK_EQ_STR(fl_nn_model_meta(m2, "ssd_anchors"), fl_nn_model_meta(m, "ssd_anchors"));
        T_CHECK_EQ_INT(fl_nn_model_n_outputs(m2), PKGS[i].n_outputs);
        e1 = exec_for(m, s, FL_NN_BACKEND_XNNPACK);
        e2 = exec_for(m2, s, FL_NN_BACKEND_XNNPACK);
        T_REQUIRE(e1 && e2);
        {
            size_t n;
            float *in1 = fl_nn_exec_input(e1), *in2 = fl_nn_exec_input(e2);
            n = (size_t)(s ? s : atoi(fl_nn_model_meta(m, "input_size")));
            n = n * n * 3;
            for (size_t k = 0; k < n; k++)
                in1[k] = in2[k] = (float)(fl_rng_double(&rng) * 2 - 1);
        }
        T_REQUIRE(fl_nn_exec_run(e1, &err) == FL_OK && fl_nn_exec_run(e2, &err) == FL_OK);
        for (int o = 0; o < PKGS[i].n_outputs; o++) {
            int s1[3], s2[3];
            const float *a = fl_nn_exec_output(e1, o, s1), *b = fl_nn_exec_output(e2, o, s2);
            T_REQUIRE(a && b && memcmp(s1, s2, sizeof(s1)) == 0);
            T_CHECK(memcmp(a, b, sizeof(float) * (size_t)s1[0] * s1[1] * s1[2]) == 0);
        }
        stat(path, &st);
        printf("# %s.flm: %lld bytes\n", fl_nn_faceapi_net_stem(PKGS[i].net),
               (long long)st.st_size);
        fl_nn_exec_free(e1);
        fl_nn_exec_free(e2);
        fl_nn_model_unref(m2);
    }
    unlink(path);
    rmdir(dir);
}

/* Replace the first occurrence of `from` in a copy of s by `to`. */
static char *replace_once(const char *s, size_t len, const char *from, const char *to,
                          size_t *out_len)
{
    const char *p = strstr(s, from);
    size_t nf = strlen(from), nt = strlen(to);
    char *r;
    if (!p)
        return NULL;
    r = fl_malloc(len - nf + nt + 1);
    memcpy(r, s, (size_t)(p - s));
    memcpy(r + (p - s), to, nt);
    memcpy(r + (p - s) + nt, p + nf, len - (size_t)(p - s) - nf + 1);
    *out_len = len - nf + nt;
    return r;
}

/* Weights that do not fit the architecture (renamed tensor, wrong shape)
 * make the build fail with CORRUPT, not crash. */
static void test_build_rejects_bad_weights(void)
{
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"\"conv5/bias\"", "\"conv5/bias_renamed\""},         /* missing tensor */
        {"\"shape\":[1,1,512,25]", "\"shape\":[1,1,25,512]"}, /* conv8 filters HWIO swap */
        {"\"shape\":[3,3,3,16]", "\"shape\":[3,3,16,3]"},     /* conv0: cin 16 */
    };
    char mpath[1024], bpath[1024];
    uint8_t *json = NULL, *bin = NULL;
    size_t json_len = 0, bin_len = 0;

    if (!t_model(MODEL_DIR "/tiny_face_detector_model-weights_manifest.json", mpath,
                 sizeof(mpath)) ||
        !t_model(MODEL_DIR "/tiny_face_detector_model.bin", bpath, sizeof(bpath)))
        T_SKIP("models/face-api absent");
    T_REQUIRE(fl_file_read(mpath, 1u << 20, &json, &json_len, NULL) == FL_OK);
    T_REQUIRE(fl_file_read(bpath, 16u << 20, &bin, &bin_len, NULL) == FL_OK);
    for (size_t i = 0; i < FL_ARRAY_LEN(edits); i++) {
        size_t n = 0;
        char *j = replace_once((const char *)json, json_len, edits[i].from, edits[i].to, &n);
        const void *shards[1] = {bin};
        size_t lens[1] = {bin_len};
        struct fl_err err = {0};
        struct fl_nn_faceapi_weights *w;
        struct fl_nn_model *m;
        if (!j) {
            printf("# edit %zu: pattern not found in the manifest\n", i);
            T_CHECK(j != NULL);
            continue;
        }
        w = fl_nn_faceapi_weights_load_mem(j, n, shards, lens, 1, &err);
        T_CHECK(w != NULL);
        m = w ? fl_nn_faceapi_build(FL_NN_FACEAPI_TINY_DETECTOR, w, &err) : NULL;
        T_CHECK(m == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
        printf("# edit %zu: %s\n", i, err.msg);
        fl_nn_model_unref(m);
        fl_nn_faceapi_weights_free(w);
        fl_free(j);
    }
    /* the wrong net for these weights */
    {
        struct fl_err err = {0};
        struct fl_nn_faceapi_weights *w = load_pkg(FL_NN_FACEAPI_TINY_DETECTOR, NULL);
        T_REQUIRE(w != NULL);
        T_CHECK(fl_nn_faceapi_build(FL_NN_FACEAPI_RECOGNITION, w, &err) == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
        fl_nn_faceapi_weights_free(w);
    }
    fl_free(json);
    fl_free(bin);
}

/* Allocation failure at every point of loading and building the tiny
 * detector: FL_ERR_NOMEM (or a JSON parse error when jansson's own
 * allocation failed; a few jansson allocations are optional and the load
 * then succeeds), never a crash or a leak. */
static void test_alloc_failures(void)
{
    char mpath[1024], bpath[1024];
    uint8_t *json = NULL, *bin = NULL;
    size_t json_len = 0, bin_len = 0;
    long live, n;

    if (!t_model(MODEL_DIR "/tiny_face_detector_model-weights_manifest.json", mpath,
                 sizeof(mpath)) ||
        !t_model(MODEL_DIR "/tiny_face_detector_model.bin", bpath, sizeof(bpath)))
        T_SKIP("models/face-api absent");
    T_REQUIRE(fl_file_read(mpath, 1u << 20, &json, &json_len, NULL) == FL_OK);
    T_REQUIRE(fl_file_read(bpath, 16u << 20, &bin, &bin_len, NULL) == FL_OK);
    live = fl_alloc_live();
    for (n = 1; n < 100000; n++) {
        const void *shards[1] = {bin};
        size_t lens[1] = {bin_len};
        struct fl_err err = {0};
        struct fl_nn_faceapi_weights *w;
        struct fl_nn_model *m = NULL;
        long injected;

        fl_test_fail_alloc_at(n);
        w = fl_nn_faceapi_weights_load_mem((const char *)json, json_len, shards, lens, 1, &err);
        if (w)
            m = fl_nn_faceapi_build(FL_NN_FACEAPI_TINY_DETECTOR, w, &err);
        injected = fl_test_injected();
        fl_test_fail_alloc_at(0);
        if (injected == 0) {
            T_CHECK(m != NULL);
        } else if (!m && (err.code != FL_ERR_NOMEM &&
                          /* jansson reports some of its allocation failures
                           * as syntax errors; nothing to tell them apart by */
                          !(err.code == FL_ERR_CORRUPT &&
                            strncmp(err.msg, "faceapi: manifest JSON", 22) == 0))) {
            printf("# failure at allocation %ld: model %p, %s: %s\n", n, (void *)m,
                   fl_status_name(err.code), err.msg);
            T_CHECK(!"allocation failure not reported as NOMEM");
        }
        fl_nn_model_unref(m);
        fl_nn_faceapi_weights_free(w);
        T_CHECK_EQ_INT(fl_alloc_live(), live);
        if (injected == 0 || t_g.cur_failed > 5)
            break;
    }
    printf("# %ld allocation points checked\n", n - 1);
    fl_free(json);
    fl_free(bin);
}

/* Normalisation: face-api's float32 formulas, checked at exact points. */
static void test_prep(void)
{
    struct fl_nn_faceapi_prep p;
    uint8_t px[6] = {0, 255, 128, 122, 117, 104};
    float out[6], in_f[6], out_f[6];

    if (!models_present() || !model(FL_NN_FACEAPI_SSD) || !model(FL_NN_FACEAPI_RECOGNITION))
        T_SKIP("models/face-api absent");
    T_REQUIRE(fl_nn_faceapi_prep_get(model(FL_NN_FACEAPI_SSD), &p, NULL) == FL_OK);
    T_CHECK(p.div_first);
    fl_nn_faceapi_prep_u8(&p, px, 2, out);
    T_CHECK(out[0] == -1.0f && out[1] == 1.0f);
    T_CHECK(out[2] == 128.0f / 127.5f - 1.0f);
    T_REQUIRE(fl_nn_faceapi_prep_get(model(FL_NN_FACEAPI_RECOGNITION), &p, NULL) == FL_OK);
    T_CHECK(!p.div_first);
    T_CHECK(p.sub[0] == 122.782f && p.sub[1] == 117.001f && p.sub[2] == 104.298f);
    T_CHECK(p.div == 255.0f);
    fl_nn_faceapi_prep_u8(&p, px, 2, out);
    T_CHECK(out[0] == (0.0f - 122.782f) / 255.0f);
    T_CHECK(out[4] == (117.0f - 117.001f) / 255.0f);
    for (int i = 0; i < 6; i++)
        in_f[i] = px[i];
    fl_nn_faceapi_prep_f32(&p, in_f, 2, out_f);
    T_CHECK(memcmp(out, out_f, sizeof(out)) == 0);
    fl_nn_faceapi_prep_f32(&p, in_f, 2, in_f); /* in place */
    T_CHECK(memcmp(out, in_f, sizeof(out)) == 0);
}

/* ============================ Golden: nets ============================ */

/* Which rows a backend runs: all for XNNPACK, every `ref_step`-th for REF. */
static bool row_selected(enum fl_nn_backend be, size_t i, size_t ref_step)
{
    return be != FL_NN_BACKEND_REF || i % ref_step == 0 || getenv("FL_FACEAPI_REF_ALL");
}

static void golden_recognition(enum fl_nn_backend be)
{
    json_t *rows = load_jsonl("faceapi/recognition/descriptors.jsonl");
    struct fl_nn_model *m = model(FL_NN_FACEAPI_RECOGNITION);
    struct fl_nn_exec *e = NULL;
    float(*desc)[128] = NULL;
    double worst = 0, worst_l2 = 0;
    size_t n_run = 0, n_rows;

    if (!rows)
        T_SKIP("../shared/golden absent");
    if (!m) {
        json_decref(rows);
        T_SKIP("models/face-api absent");
    }
    n_rows = json_array_size(rows);
    e = exec_for(m, 0, be);
    desc = fl_calloc(n_rows, sizeof(*desc));
    T_REQUIRE(e != NULL && desc != NULL && n_rows == 40);
    for (size_t i = 0; i < n_rows; i++) {
        const json_t *row = json_array_get(rows, i);
        int w = 0, h = 0, shape[3];
        uint8_t *img;
        const float *out;
        double l2 = 0, mx;
        if (!row_selected(be, i, 10))
            continue;
        img = golden_png(json_string_value(json_object_get(row, "chip")), &w, &h);
        T_REQUIRE(img != NULL && w == 150 && h == 150);
        T_REQUIRE(run_rgb(m, e, img, w, h));
        fl_free(img);
        out = fl_nn_exec_output(e, 0, shape);
        T_REQUIRE(out && shape[0] == 1 && shape[1] == 1 && shape[2] == 128);
        memcpy(desc[i], out, sizeof(desc[i]));
        mx = diff_json(out, json_object_get(row, "descriptor"), 128, &l2);
        T_CHECK(mx <= 1e-5);
        T_CHECK(l2 <= 1e-4);
        if (mx > 1e-5 || l2 > 1e-4)
            printf("# %s: max %.3g L2 %.3g\n", json_string_value(json_object_get(row, "id")), mx,
                   l2);
        worst = fmax(worst, mx);
        worst_l2 = fmax(worst_l2, l2);
        n_run++;
    }
    printf("# recognition %s: %zu chips, max |d| %.3g, max L2 %.3g\n", backend_name(be), n_run,
           worst, worst_l2);
    if (be == FL_NN_BACKEND_XNNPACK) {
        /* semantic: every same-person pair is nearer than the mean
         * different-person distance (our descriptors, not the golden ones) */
        double sum_diff = 0, max_same = 0;
        size_t n_diff = 0;
        for (size_t i = 0; i < n_rows; i++)
            for (size_t j = i + 1; j < n_rows; j++) {
                const char *pi =
                    json_string_value(json_object_get(json_array_get(rows, i), "person"));
                const char *pj =
                    json_string_value(json_object_get(json_array_get(rows, j), "person"));
                double d = 0;
                for (int k = 0; k < 128; k++)
                    d += ((double)desc[i][k] - desc[j][k]) * ((double)desc[i][k] - desc[j][k]);
                d = sqrt(d);
                if (pi && pj && strcmp(pi, pj) == 0) {
                    max_same = fmax(max_same, d);
                } else {
                    sum_diff += d;
                    n_diff++;
                }
            }
        T_CHECK(n_diff == 760);
        T_CHECK(max_same < sum_diff / (double)n_diff);
        printf("# same-person max L2 %.3f, different-person mean L2 %.3f\n", max_same,
               sum_diff / (double)n_diff);
    }
    fl_free(desc);
    fl_nn_exec_free(e);
    json_decref(rows);
}

static void test_golden_recognition_ref(void)
{
    golden_recognition(FL_NN_BACKEND_REF);
}

static void test_golden_recognition_xnnpack(void)
{
    golden_recognition(FL_NN_BACKEND_XNNPACK);
}

static void golden_landmarks(enum fl_nn_backend be, bool tiny)
{
    json_t *rows = load_jsonl("faceapi/landmarks/landmarks.jsonl");
    struct fl_nn_model *m = model(tiny ? FL_NN_FACEAPI_LANDMARK68_TINY : FL_NN_FACEAPI_LANDMARK68);
    struct fl_nn_exec *e;
    double worst = 0;
    size_t n_run = 0;

    if (!rows)
        T_SKIP("../shared/golden absent");
    if (!m) {
        json_decref(rows);
        T_SKIP("models/face-api absent");
    }
    e = exec_for(m, 0, be);
    T_REQUIRE(e != NULL && json_array_size(rows) == 20);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *row = json_array_get(rows, i);
        int w = 0, h = 0, shape[3];
        uint8_t *img;
        const float *out;
        double mx;
        if (!row_selected(be, i, 4))
            continue;
        img = golden_png(json_string_value(json_object_get(row, "input")), &w, &h);
        T_REQUIRE(img != NULL && w == 112 && h == 112);
        T_REQUIRE(run_rgb(m, e, img, w, h));
        fl_free(img);
        out = fl_nn_exec_output(e, 0, shape);
        T_REQUIRE(out && shape[2] == 136);
        mx = diff_json(out, json_object_get(row, tiny ? "raw68_tiny" : "raw68"), 136, NULL);
        T_CHECK(mx <= 1e-5);
        worst = fmax(worst, mx);
        n_run++;
    }
    printf("# landmark68%s %s: %zu inputs, max |d| %.3g\n", tiny ? "_tiny" : "", backend_name(be),
           n_run, worst);
    fl_nn_exec_free(e);
    json_decref(rows);
}

static void test_golden_landmarks_ref(void)
{
    golden_landmarks(FL_NN_BACKEND_REF, false);
}

static void test_golden_landmarks_xnnpack(void)
{
    golden_landmarks(FL_NN_BACKEND_XNNPACK, false);
}

static void test_golden_landmarks_tiny_ref(void)
{
    golden_landmarks(FL_NN_BACKEND_REF, true);
}

static void test_golden_landmarks_tiny_xnnpack(void)
{
    golden_landmarks(FL_NN_BACKEND_XNNPACK, true);
}

/* age/gender and expression on the attribute inputs. */
static void golden_attributes(enum fl_nn_backend be)
{
    json_t *rows = load_jsonl("faceapi/attributes/age_gender_expression.jsonl");
    struct fl_nn_model *mag = model(FL_NN_FACEAPI_AGE_GENDER);
    struct fl_nn_model *mex = model(FL_NN_FACEAPI_EXPRESSION);
    struct fl_nn_exec *eag, *eex;
    double w_age = 0, w_gender = 0, w_expr = 0;
    size_t n_run = 0;

    if (!rows)
        T_SKIP("../shared/golden absent");
    if (!mag || !mex) {
        json_decref(rows);
        T_SKIP("models/face-api absent");
    }
    eag = exec_for(mag, 0, be);
    eex = exec_for(mex, 0, be);
    T_REQUIRE(eag != NULL && eex != NULL && json_array_size(rows) == 20);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *row = json_array_get(rows, i);
        int w = 0, h = 0, s0[3], s1[3], s2[3];
        uint8_t *img;
        const float *age, *gender, *expr;
        double d;
        if (!row_selected(be, i, 4))
            continue;
        img = golden_png(json_string_value(json_object_get(row, "input")), &w, &h);
        T_REQUIRE(img != NULL && w == 112 && h == 112);
        T_REQUIRE(run_rgb(mag, eag, img, w, h));
        T_REQUIRE(run_rgb(mex, eex, img, w, h));
        fl_free(img);
        age = fl_nn_exec_output(eag, 0, s0);
        gender = fl_nn_exec_output(eag, 1, s1);
        expr = fl_nn_exec_output(eex, 0, s2);
        T_REQUIRE(age && gender && expr && s0[2] == 1 && s1[2] == 2 && s2[2] == 7);
        d = fabs(age[0] - json_number_value(json_object_get(row, "age")));
        T_CHECK(d <= 1e-3);
        w_age = fmax(w_age, d);
        d = diff_json(gender, json_object_get(row, "gender_logits"), 2, NULL);
        T_CHECK(d <= 1e-4);
        w_gender = fmax(w_gender, d);
        d = diff_json(expr, json_object_get(row, "expression_logits"), 7, NULL);
        T_CHECK(d <= 1e-4);
        w_expr = fmax(w_expr, d);
        n_run++;
    }
    printf("# attributes %s: %zu inputs, age max |d| %.3g, gender %.3g, expression %.3g\n",
           backend_name(be), n_run, w_age, w_gender, w_expr);
    fl_nn_exec_free(eag);
    fl_nn_exec_free(eex);
    json_decref(rows);
}

static void test_golden_attributes_ref(void)
{
    golden_attributes(FL_NN_BACKEND_REF);
}

static void test_golden_attributes_xnnpack(void)
{
    golden_attributes(FL_NN_BACKEND_XNNPACK);
}

/* SSD: decoded boxes and scores of all 5118 anchors for the net_only PNGs. */
static void golden_ssd(enum fl_nn_backend be)
{
    json_t *rows = load_jsonl("faceapi/detect/ssd_mobilenetv1.jsonl");
    struct fl_nn_model *m = model(FL_NN_FACEAPI_SSD);
    struct fl_nn_exec *e;
    float *anchors = NULL, *boxes = NULL, *scores = NULL;
    double wb = 0, ws = 0;
    size_t n_run = 0, row_i;
    json_t *row;

    if (!rows)
        T_SKIP("../shared/golden absent");
    if (!m) {
        json_decref(rows);
        T_SKIP("models/face-api absent");
    }
    e = exec_for(m, 0, be);
    anchors = fl_malloc(sizeof(float) * 4 * FL_NN_FACEAPI_SSD_ANCHORS);
    boxes = fl_malloc(sizeof(float) * 4 * FL_NN_FACEAPI_SSD_ANCHORS);
    scores = fl_malloc(sizeof(float) * FL_NN_FACEAPI_SSD_ANCHORS);
    T_REQUIRE(e && anchors && boxes && scores);
    T_REQUIRE(fl_nn_faceapi_ssd_anchors(m, anchors, NULL) == FL_OK);
    json_array_foreach(rows, row_i, row)
    {
        const json_t *no = json_object_get(row, "net_only");
        float *gb, *gs;
        size_t nb = 0, ns = 0;
        int w = 0, h = 0;
        uint8_t *img;
        struct fl_err err = {0};
        if (!no)
            continue;
        if (be == FL_NN_BACKEND_REF && n_run >= 1 && !getenv("FL_FACEAPI_REF_ALL"))
            break; /* REF: one image (3 GMAC on the scalar path) */
        img = golden_png(json_string_value(json_object_get(no, "input")), &w, &h);
        gb = load_f32(json_string_value(json_object_get(no, "boxes_f32")), &nb);
        gs = load_f32(json_string_value(json_object_get(no, "scores_f32")), &ns);
        T_REQUIRE(img && gb && gs && w == 512 && h == 512);
        T_REQUIRE(nb == 4 * FL_NN_FACEAPI_SSD_ANCHORS && ns == FL_NN_FACEAPI_SSD_ANCHORS);
        T_REQUIRE(run_rgb(m, e, img, w, h));
        T_REQUIRE(fl_nn_faceapi_ssd_decode(e, anchors, boxes, scores, &err) == FL_OK);
        for (size_t i = 0; i < nb; i++)
            wb = fmax(wb, fabs((double)boxes[i] - gb[i]));
        for (size_t i = 0; i < ns; i++)
            ws = fmax(ws, fabs((double)scores[i] - gs[i]));
        fl_free(img);
        fl_free(gb);
        fl_free(gs);
        n_run++;
    }
    T_CHECK(n_run >= 1);
    T_CHECK(wb <= 1e-5);
    T_CHECK(ws <= 1e-5);
    printf("# ssd %s: %zu inputs, boxes max |d| %.3g, scores max |d| %.3g\n", backend_name(be),
           n_run, wb, ws);
    fl_free(anchors);
    fl_free(boxes);
    fl_free(scores);
    fl_nn_exec_free(e);
    json_decref(rows);
}

static void test_golden_ssd_ref(void)
{
    golden_ssd(FL_NN_BACKEND_REF);
}

static void test_golden_ssd_xnnpack(void)
{
    golden_ssd(FL_NN_BACKEND_XNNPACK);
}

/* Tiny face detector: the raw grid at 416 and 608. */
static void golden_tiny(enum fl_nn_backend be)
{
    json_t *rows = load_jsonl("faceapi/detect/tiny_face_detector.jsonl");
    struct fl_nn_model *m = model(FL_NN_FACEAPI_TINY_DETECTOR);
    static const char *const sizes[] = {"416", "608"};
    double worst = 0;
    size_t n_run = 0, row_i;
    json_t *row;

    if (!rows)
        T_SKIP("../shared/golden absent");
    if (!m) {
        json_decref(rows);
        T_SKIP("models/face-api absent");
    }
    for (size_t si = 0; si < 2; si++) {
        int s = atoi(sizes[si]), g = s / 32;
        struct fl_nn_exec *e = exec_for(m, s, be);
        size_t n_here = 0;
        T_REQUIRE(e != NULL);
        json_array_foreach(rows, row_i, row)
        {
            const json_t *no = json_object_get(
                json_object_get(json_object_get(row, "by_input_size"), sizes[si]), "net_only");
            float *grid;
            const float *out;
            size_t n = 0;
            int w = 0, h = 0, shape[3];
            uint8_t *img;
            if (!no)
                continue;
            if (be == FL_NN_BACKEND_REF && n_here >= 1 && !getenv("FL_FACEAPI_REF_ALL"))
                break;
            img = golden_png(json_string_value(json_object_get(no, "input")), &w, &h);
            grid = load_f32(json_string_value(json_object_get(no, "output_f32")), &n);
            T_REQUIRE(img && grid && w == s && h == s && n == (size_t)g * g * 25);
            if (!run_rgb(m, e, img, w, h)) {
                T_CHECK(!"run failed");
                fl_free(img);
                fl_free(grid);
                break;
            }
            out = fl_nn_exec_output(e, 0, shape);
            T_REQUIRE(out && shape[0] == g && shape[1] == g && shape[2] == 25);
            for (size_t i = 0; i < n; i++)
                worst = fmax(worst, fabs((double)out[i] - grid[i]));
            fl_free(img);
            fl_free(grid);
            n_here++;
            n_run++;
        }
        fl_nn_exec_free(e);
    }
    T_CHECK(n_run >= 2);
    T_CHECK(worst <= 5e-4);
    printf("# tiny %s: %zu grids, max |d| %.3g\n", backend_name(be), n_run, worst);
    json_decref(rows);
}

static void test_golden_tiny_ref(void)
{
    golden_tiny(FL_NN_BACKEND_REF);
}

static void test_golden_tiny_xnnpack(void)
{
    golden_tiny(FL_NN_BACKEND_XNNPACK);
}

/* Tiny decode against the golden raw_top20 of the square LFW image (cf =
 * 1, pixels = relative * 250): the raw values are put into an otherwise
 * hopeless grid and must come back with face-api's score and box. */
static void test_tiny_decode(void)
{
    json_t *rows = load_jsonl("faceapi/detect/tiny_face_detector.jsonl");
    const json_t *row;
    double worst_px = 0, worst_score = 0;
    size_t n_checked = 0;

    if (!rows)
        T_SKIP("../shared/golden absent");
    row = json_array_get(rows, 0);
    T_REQUIRE(row && json_integer_value(json_object_get(row, "width")) == 250 &&
              json_integer_value(json_object_get(row, "height")) == 250);
    for (int si = 0; si < 2; si++) {
        const char *size = si ? "608" : "416";
        int g = atoi(size) / 32;
        const json_t *top = json_object_get(
            json_object_get(json_object_get(row, "by_input_size"), size), "raw_top20");
        float *grid = fl_malloc(sizeof(float) * (size_t)g * g * 25);
        struct fl_nn_faceapi_tiny_box *boxes = fl_malloc(sizeof(*boxes) * (size_t)g * g * 5);
        size_t i, n;
        const json_t *c;
        T_REQUIRE(grid && boxes && json_array_size(top) == 20);
        for (size_t k = 0; k < (size_t)g * g * 25; k++)
            grid[k] = -100.0f; /* score ~ 0, box finite */
        json_array_foreach(top, i, c)
        {
            int r = (int)json_integer_value(json_object_get(c, "row"));
            int col = (int)json_integer_value(json_object_get(c, "col"));
            int a = (int)json_integer_value(json_object_get(c, "anchor"));
            for (int k = 0; k < 5; k++)
                grid[((size_t)r * g + col) * 25 + (size_t)a * 5 + k] =
                    (float)json_number_value(json_array_get(json_object_get(c, "raw"), (size_t)k));
        }
        n = fl_nn_faceapi_tiny_decode(grid, g, 1e-30, boxes, (size_t)g * g * 5);
        T_CHECK_EQ_INT(n, 20);
        json_array_foreach(top, i, c)
        {
            const json_t *box = json_object_get(c, "box");
            int r = (int)json_integer_value(json_object_get(c, "row"));
            int col = (int)json_integer_value(json_object_get(c, "col"));
            int a = (int)json_integer_value(json_object_get(c, "anchor"));
            for (size_t k = 0; k < n && k < (size_t)g * g * 5; k++) {
                const struct fl_nn_faceapi_tiny_box *b = &boxes[k];
                if (b->row != r || b->col != col || b->anchor != a)
                    continue;
                worst_score = fmax(worst_score,
                                   fabs(b->score - json_number_value(json_object_get(c, "score"))));
                worst_px =
                    fmax(worst_px, fabs(b->x * 250 - json_number_value(json_object_get(box, "x"))));
                worst_px =
                    fmax(worst_px, fabs(b->y * 250 - json_number_value(json_object_get(box, "y"))));
                worst_px = fmax(
                    worst_px, fabs(b->w * 250 - json_number_value(json_object_get(box, "width"))));
                worst_px = fmax(
                    worst_px, fabs(b->h * 250 - json_number_value(json_object_get(box, "height"))));
                n_checked++;
            }
        }
        /* the threshold as face-api applies it; cap 0 still counts */
        {
            size_t above = 0;
            json_array_foreach(top, i, c) above +=
                json_number_value(json_object_get(c, "score")) > 0.5;
            T_CHECK_EQ_INT(fl_nn_faceapi_tiny_decode(grid, g, 0.5, boxes, 0), above);
        }
        fl_free(grid);
        fl_free(boxes);
    }
    T_CHECK_EQ_INT(n_checked, 40);
    T_CHECK(worst_px <= 1e-6);
    T_CHECK(worst_score <= 1e-7); /* golden scores are float32 */
    printf("# tiny decode: %zu boxes, max |d| %.3g px, score %.3g\n", n_checked, worst_px,
           worst_score);
    json_decref(rows);
}

/* =============================== Timing =============================== */

/* CPU time of the calling thread in ns (one-thread executors run there,
 * so this is robust to other processes competing for the cores). */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ms per forward, XNNPACK, one thread, wall and thread-CPU time, best of N
 * (informational: prints, checks only that runs succeed). */
static void test_timing_xnnpack(void)
{
    static const struct {
        enum fl_nn_faceapi_net net;
        int size;
    } runs[] = {
        {FL_NN_FACEAPI_RECOGNITION, 0},     {FL_NN_FACEAPI_LANDMARK68, 0},
        {FL_NN_FACEAPI_LANDMARK68_TINY, 0}, {FL_NN_FACEAPI_AGE_GENDER, 0},
        {FL_NN_FACEAPI_EXPRESSION, 0},      {FL_NN_FACEAPI_SSD, 0},
        {FL_NN_FACEAPI_TINY_DETECTOR, 416}, {FL_NN_FACEAPI_TINY_DETECTOR, 608},
    };
    const char *env = getenv("FL_FACEAPI_BENCH");
    int iters = env && atoi(env) > 0 ? atoi(env) : 3;

    if (!models_present())
        T_SKIP("models/face-api absent");
    for (size_t i = 0; i < FL_ARRAY_LEN(runs); i++) {
        struct fl_nn_model *m = model(runs[i].net);
        struct fl_nn_exec *e;
        uint64_t best_wall = UINT64_MAX, best_cpu = UINT64_MAX;
        struct fl_err err = {0};
        if (!m)
            continue;
        e = exec_for(m, runs[i].size, FL_NN_BACKEND_XNNPACK);
        T_CHECK(e != NULL);
        if (!e)
            continue;
        T_CHECK(fl_nn_exec_run(e, &err) == FL_OK); /* warm-up */
        for (int k = 0; k < iters; k++) {
            uint64_t w0 = fl_time_mono_ns(), c0 = thread_cpu_ns();
            T_CHECK(fl_nn_exec_run(e, &err) == FL_OK);
            best_cpu = FL_MIN(best_cpu, thread_cpu_ns() - c0);
            best_wall = FL_MIN(best_wall, fl_time_mono_ns() - w0);
        }
        printf("# timing %s%s: %.2f ms wall, %.2f ms thread-CPU per forward "
               "(best of %d, xnnpack, 1 thread)\n",
               fl_nn_faceapi_net_stem(runs[i].net),
               runs[i].size == 416   ? " @416"
               : runs[i].size == 608 ? " @608"
                                     : "",
               (double)best_wall / 1e6, (double)best_cpu / 1e6, iters);
        fl_nn_exec_free(e);
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_weights_packages);
    T_RUN(test_weights_dequant_raw);
    T_RUN(test_weights_synthetic);
    T_RUN(test_weights_corrupt);
    T_RUN(test_weights_truncated_and_fuzzed);
    T_RUN(test_weights_paths);
    T_RUN(test_build_all);
    T_RUN(test_build_macs);
    T_RUN(test_ssd_anchors_meta);
    T_RUN(test_flm_roundtrip);
    T_RUN(test_build_rejects_bad_weights);
    T_RUN(test_alloc_failures);
    T_RUN(test_prep);
    T_RUN(test_golden_recognition_ref);
    T_RUN(test_golden_recognition_xnnpack);
    T_RUN(test_golden_landmarks_ref);
    T_RUN(test_golden_landmarks_xnnpack);
    T_RUN(test_golden_landmarks_tiny_ref);
    T_RUN(test_golden_landmarks_tiny_xnnpack);
    T_RUN(test_golden_attributes_ref);
    T_RUN(test_golden_attributes_xnnpack);
    T_RUN(test_golden_ssd_ref);
    T_RUN(test_golden_ssd_xnnpack);
    T_RUN(test_golden_tiny_ref);
    T_RUN(test_golden_tiny_xnnpack);
    T_RUN(test_tiny_decode);
    T_RUN(test_timing_xnnpack);
    for (int i = 0; i < FL_NN_FACEAPI_NET_COUNT_; i++)
        fl_nn_model_unref(g_models[i]);
    return t_done();
}
