/* test_face_detect_faceapi.c: face-api's SSD and Tiny detectors end to end
 * (our pad, resize, normalisation, decode and NMS) against face-api's own
 * final detections in golden/faceapi/detect (10 images: 7 LFW, 3 groups).
 * golden/README.md: a pipeline that copies face-api's float steps should
 * land within 1e-3 px on boxes and 1e-4 on scores. */
#include "t.h"
#include "t_img.h"
#include "t_jsonl.h"
#include "face/detect.h"
#include "img/img.h"

T_MAIN_STATE;

static struct fl__faceapi_det *g_d;
static struct fl__faceapi_det_exec *g_x;
static char g_golden[1024];

/* An image of the golden set (rel: its path inside g_golden). */
static int load_image(const char *rel, struct fl_image *img)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", g_golden, rel);
    return t_load_image(path, img);
}

/* Compare our detections with a golden "detections" array. */
static void compare(const char *name, const struct fl__det *d, int n, json_t *want, double *worst_px,
                    double *worst_score)
{
    size_t k;
    json_t *w;
    if ((size_t)n != json_array_size(want)) {
        printf("# %s: %d detections, golden %zu\n", name, n, json_array_size(want));
        t_g.cur_failed++;
        return;
    }
    json_array_foreach(want, k, w)
    {
        json_t *b = json_object_get(w, "box");
        double v[4] = {json_number_value(json_object_get(b, "x")),
                       json_number_value(json_object_get(b, "y")),
                       json_number_value(json_object_get(b, "width")),
                       json_number_value(json_object_get(b, "height"))};
        double g[4] = {d[k].box.x, d[k].box.y, d[k].box.w, d[k].box.h};
        for (int i = 0; i < 4; i++)
            *worst_px = fmax(*worst_px, fabs(v[i] - g[i]));
        *worst_score =
            fmax(*worst_score, fabs(json_number_value(json_object_get(w, "score")) - d[k].score));
    }
}

static void test_ssd_matches_faceapi(void)
{
    char path[2048];
    size_t n = 0;
    double wp = 0, ws = 0;
    json_t **rows;
    if (!g_x || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    snprintf(path, sizeof(path), "%s/faceapi/detect/ssd_mobilenetv1.jsonl", g_golden);
    rows = t_jsonl_load(path, &n);
    T_REQUIRE(rows && n == 10);
    for (size_t i = 0; i < n; i++) {
        struct fl_image img = {0};
        struct fl__det *d = NULL;
        int nd = 0;
        T_REQUIRE(load_image(json_string_value(json_object_get(rows[i], "image")), &img));
        T_REQUIRE(fl__faceapi_ssd_detect(g_x, &img, 0.5f, &d, &nd, NULL) == FL_OK);
        compare(json_string_value(json_object_get(rows[i], "name")), d, nd,
                json_object_get(rows[i], "detections"), &wp, &ws);
        fl_free(d);
        fl_image_free(&img);
    }
    printf("# SSD vs face-api: max box diff %.2g px, max score diff %.2g\n", wp, ws);
    T_CHECK(wp <= 1e-3);
    T_CHECK(ws <= 1e-4);
    t_jsonl_free(rows, n);
}

static void test_tiny_matches_faceapi(void)
{
    static const int sizes[2] = {416, 608};
    char path[2048];
    size_t n = 0;
    double wp = 0, ws = 0;
    json_t **rows;
    if (!g_x || !g_golden[0])
        T_SKIP("models or ../shared/golden absent");
    snprintf(path, sizeof(path), "%s/faceapi/detect/tiny_face_detector.jsonl", g_golden);
    rows = t_jsonl_load(path, &n);
    T_REQUIRE(rows && n == 10);
    for (size_t i = 0; i < n; i++) {
        struct fl_image img = {0};
        T_REQUIRE(load_image(json_string_value(json_object_get(rows[i], "image")), &img));
        for (int s = 0; s < 2; s++) {
            char key[8];
            struct fl__det *d = NULL;
            int nd = 0;
            snprintf(key, sizeof(key), "%d", sizes[s]);
            T_REQUIRE(fl__faceapi_tiny_detect(g_x, &img, sizes[s], 0.5f, &d, &nd, NULL) == FL_OK);
            compare(json_string_value(json_object_get(rows[i], "name")), d, nd,
                    json_object_get(json_object_get(json_object_get(rows[i], "by_input_size"), key),
                                    "detections"),
                    &wp, &ws);
            fl_free(d);
        }
        fl_image_free(&img);
    }
    printf("# Tiny vs face-api: max box diff %.2g px, max score diff %.2g\n", wp, ws);
    T_CHECK(wp <= 1e-3);
    T_CHECK(ws <= 1e-4);
    t_jsonl_free(rows, n);
}

int main(int argc, char **argv)
{
    char dir[1024];
    t_init(argc, argv);
    fl_core_init();
    if (t_shared("golden/README.md", g_golden, sizeof(g_golden)))
        *strrchr(g_golden, '/') = '\0';
    else
        g_golden[0] = '\0';
    if (t_model("face-api/model", dir, sizeof(dir))) {
        struct fl_err e;
        g_d = fl__faceapi_det_load(dir, &e);
        if (g_d)
            g_x = fl__faceapi_det_exec_new(g_d, FL_NN_BACKEND_XNNPACK, &e);
        if (!g_x)
            printf("# load: %s\n", e.msg);
    }
    T_RUN(test_ssd_matches_faceapi);
    T_RUN(test_tiny_matches_faceapi);
    fl__faceapi_det_exec_free(g_x);
    fl__faceapi_det_free(g_d);
    return t_done();
}
