/* test_face_mtcnn.c: the MTCNN cascade on real photos: one face per LFW
 * golden image (where SSD, an independent detector, found it), the six faces
 * of dlib's group photo, landmarks inside their boxes, none on a blank image. */
#include "t.h"
#include "t_img.h"
#include "t_jsonl.h"
#include "face/detect.h"
#include "img/img.h"

T_MAIN_STATE;

static struct fl__mtcnn *g_m;
static struct fl__mtcnn_exec *g_x;

static void test_lfw_one_face_matching_ssd(void)
{
    char path[1024], ipath[1024];
    size_t n = 0, matched = 0;
    json_t **rows;
    if (!g_x)
        T_SKIP("models absent");
    if (!t_shared("golden/faceapi/faces_pipeline.jsonl", path, sizeof(path)))
        T_SKIP("../shared/golden absent");
    rows = t_jsonl_load(path, &n);
    T_REQUIRE(rows && n == 40);
    for (size_t i = 0; i < n; i++) {
        struct fl_image img = {0};
        struct fl__mtcnn_params p;
        struct fl__det *d = NULL;
        int nd = 0;
        json_t *box = json_object_get(json_object_get(rows[i], "detection"), "box");
        struct fl_face_box ssd = {(float)json_number_value(json_object_get(box, "x")),
                                  (float)json_number_value(json_object_get(box, "y")),
                                  (float)json_number_value(json_object_get(box, "width")),
                                  (float)json_number_value(json_object_get(box, "height"))};
        float best = 0;
        /* path is .../golden/faceapi/faces_pipeline.jsonl: source is relative to golden/ */
        snprintf(ipath, sizeof(ipath), "%.*s/%s", (int)(strstr(path, "/faceapi/") - path), path,
                 json_string_value(json_object_get(rows[i], "source")));
        T_REQUIRE(t_load_image(ipath, &img));
        fl__mtcnn_params_default(&img, &p);
        T_REQUIRE(fl__mtcnn_detect(g_x, &img, &p, &d, &nd, NULL) == FL_OK);
        for (int k = 0; k < nd; k++) {
            float iou = fl_face_iou(&d[k].box, &ssd);
            if (iou > best)
                best = iou;
            /* ONet's eyes must lie inside the box, left eye left of right eye */
            T_CHECK(d[k].pts5[0] > d[k].box.x && d[k].pts5[0] < d[k].box.x + d[k].box.w);
            T_CHECK(d[k].pts5[0] < d[k].pts5[2]);
            T_CHECK(d[k].pts5[1] < d[k].pts5[7]); /* eyes above the mouth */
        }
        if (best >= 0.5f)
            matched++;
        else
            printf("# %s: best IoU with SSD's box %.2f (%d faces)\n",
                   json_string_value(json_object_get(rows[i], "id")), best, nd);
        fl_free(d);
        fl_image_free(&img);
    }
    printf("# MTCNN matched SSD's face (IoU >= 0.5) in %zu of %zu LFW images\n", matched, n);
    T_CHECK(matched >= 38);
    t_jsonl_free(rows, n);
}

static void test_group_photo(void)
{
    char path[1024];
    struct fl_image img = {0};
    struct fl__mtcnn_params p;
    struct fl__det *d = NULL;
    int nd = 0;
    if (!g_x)
        T_SKIP("models absent");
    if (!t_shared("data/detect/boxes/2008_002470.jpg", path, sizeof(path)))
        T_SKIP("../shared/data absent");
    T_REQUIRE(t_load_image(path, &img));
    fl__mtcnn_params_default(&img, &p);
    T_REQUIRE(fl__mtcnn_detect(g_x, &img, &p, &d, &nd, NULL) == FL_OK);
    printf("# dlib's 2008_002470.jpg: %d faces\n", nd);
    T_CHECK_EQ_INT(nd, 6);
    fl_free(d);
    fl_image_free(&img);
}

static void test_blank_image_has_no_face(void)
{
    struct fl_image img = {0};
    struct fl__mtcnn_params p;
    struct fl__det *d = NULL;
    int nd = -1;
    if (!g_x)
        T_SKIP("models absent");
    T_REQUIRE(fl_image_alloc(320, 240, &img, NULL) == FL_OK);
    for (int y = 0; y < img.h; y++)
        memset(img.px + (size_t)y * img.stride, 128, (size_t)img.w * 3);
    fl__mtcnn_params_default(&img, &p);
    T_REQUIRE(fl__mtcnn_detect(g_x, &img, &p, &d, &nd, NULL) == FL_OK);
    T_CHECK_EQ_INT(nd, 0);
    fl_free(d);
    fl_image_free(&img);
}

int main(int argc, char **argv)
{
    char dir[1024];
    t_init(argc, argv);
    fl_core_init();
    if (t_model("expo/android/src/main/assets/pnet.tflite", dir, sizeof(dir))) {
        struct fl_err e;
        g_m = fl__mtcnn_load(getenv("FL_MODELS") ? getenv("FL_MODELS") : "models", &e);
        if (!g_m)
            printf("# MTCNN load failed: %s\n", e.msg);
        else
            g_x = fl__mtcnn_exec_new(g_m, FL_NN_BACKEND_XNNPACK, &e);
        if (g_m && !g_x)
            printf("# MTCNN exec failed: %s\n", e.msg);
    }
    T_RUN(test_lfw_one_face_matching_ssd);
    T_RUN(test_group_photo);
    T_RUN(test_blank_image_has_no_face);
    fl__mtcnn_exec_free(g_x);
    fl__mtcnn_free(g_m);
    return t_done();
}
