/* test_face_geom.c: similarity fits and alignment transforms against the
 * golden references, head pose on synthetic projections, IoU/NMS, and the
 * landmark mapping. */
#include "t.h"
#include "t_jsonl.h"
#include "face/geom.h"

T_MAIN_STATE;

static void test_similarity_fit_exact(void)
{
    /* points through a known similarity must be recovered exactly */
    double m_true[6], src[10], dst[10], m[6], inv[6], back[6];
    double a = 1.7 * cos(0.3), b = 1.7 * sin(0.3);
    m_true[0] = a, m_true[1] = -b, m_true[2] = 12.5, m_true[3] = b, m_true[4] = a, m_true[5] = -4;
    for (int i = 0; i < 5; i++) {
        src[2 * i] = 10 + 7 * i * i;
        src[2 * i + 1] = 3 - 5 * i;
        dst[2 * i] = m_true[0] * src[2 * i] + m_true[1] * src[2 * i + 1] + m_true[2];
        dst[2 * i + 1] = m_true[3] * src[2 * i] + m_true[4] * src[2 * i + 1] + m_true[5];
    }
    T_REQUIRE(fl_face_similarity_fit(src, dst, 5, m));
    for (int k = 0; k < 6; k++)
        T_CHECK_NEAR(m[k], m_true[k], 1e-9);
    T_REQUIRE(fl_face_affine_invert(m, inv));
    T_REQUIRE(fl_face_affine_invert(inv, back));
    for (int k = 0; k < 6; k++)
        T_CHECK_NEAR(back[k], m[k], 1e-9);
    /* degenerate: all source points equal */
    for (int i = 0; i < 5; i++)
        src[2 * i] = src[2 * i + 1] = 1;
    T_CHECK(!fl_face_similarity_fit(src, dst, 5, m));
}

/* MODELS.md derives these dlib chip targets (150 px, padding 0.25) from
 * dlib's mean shape; our constants must reproduce them. */
static void test_dlib_chip_5pt_matches_models_md(void)
{
    static const double want[10] = {47.549, 46.599, 100.476, 46.599, 74.013,
                                    76.562, 50.415, 103.023, 97.610, 103.023};
    double got[10];
    fl_face_dlib_chip_5pt(150, 0.25, got);
    for (int k = 0; k < 10; k++)
        T_CHECK_NEAR(got[k], want[k], 1.5e-3);
}

/* The golden ArcFace fits (golden/mobilefacenet/embeddings.jsonl M_2x3) were
 * made by an independent implementation from the faces_pipeline landmarks. */
static void test_arcface_fit_matches_golden(void)
{
    char p1[1024], p2[1024];
    size_t n_emb = 0, n_pipe = 0, checked = 0;
    json_t **emb, **pipe;
    if (!t_shared("golden/mobilefacenet/embeddings.jsonl", p1, sizeof(p1)) ||
        !t_shared("golden/faceapi/faces_pipeline.jsonl", p2, sizeof(p2)))
        T_SKIP("../shared/golden absent");
    emb = t_jsonl_load(p1, &n_emb);
    pipe = t_jsonl_load(p2, &n_pipe);
    T_REQUIRE(emb && pipe && n_emb == 40);
    for (size_t i = 0; i < n_emb; i++) {
        const char *id = json_string_value(json_object_get(emb[i], "id"));
        json_t *row = t_jsonl_find(pipe, n_pipe, "id", id);
        float lm[136], mg[6], src5[10];
        double pts[10], m[6];
        T_REQUIRE(row);
        T_REQUIRE(t_json_floats(json_object_get(row, "landmarks68"), lm, 136) == 136);
        T_REQUIRE(t_json_floats(json_object_get(emb[i], "M_2x3"), mg, 6) == 6);
        T_REQUIRE(t_json_floats(json_object_get(emb[i], "src_points5"), src5, 10) == 10);
        fl_face_5pt_from_68(lm, pts);
        for (int k = 0; k < 10; k++)
            T_CHECK_NEAR(pts[k], src5[k], 1e-3);
        T_REQUIRE(fl_face_arcface_transform(pts, m));
        for (int k = 0; k < 6; k++)
            T_CHECK_NEAR(m[k], mg[k], 1e-4 * (fabs(mg[k]) + 1));
        checked++;
    }
    T_CHECK_EQ_INT(checked, 40);
    t_jsonl_free(emb, n_emb);
    t_jsonl_free(pipe, n_pipe);
}

/* Applying the dlib chip transform to real landmarks must put the eyes,
 * nose and mouth near dlib's chip targets. The fit is least squares over 33
 * points, so turned faces and expressions leave residuals of a few pixels
 * (measured: mean 3.9 px, max 11.9 px). A wrong convention (x/y swap, the
 * fit's direction, the padding formula) moves points by well over 10% of the
 * chip, so the bounds are 3% of the chip (5 px) mean and 10% (15 px) max. */
static void test_dlib_chip_on_golden_landmarks(void)
{
    char path[1024];
    size_t n = 0;
    json_t **rows;
    double want[10], sum = 0, worst = 0;
    if (!t_shared("golden/faceapi/faces_pipeline.jsonl", path, sizeof(path)))
        T_SKIP("../shared/golden absent");
    rows = t_jsonl_load(path, &n);
    T_REQUIRE(rows && n >= 40);
    fl_face_dlib_chip_5pt(150, 0.25, want);
    for (size_t i = 0; i < n; i++) {
        float lm[136];
        double m[6], pts[10];
        T_REQUIRE(t_json_floats(json_object_get(rows[i], "landmarks68"), lm, 136) == 136);
        T_REQUIRE(fl_face_dlib_chip_transform(lm, 150, 0.25, m));
        fl_face_5pt_from_68(lm, pts);
        for (int k = 0; k < 5; k++) {
            double x = m[0] * pts[2 * k] + m[1] * pts[2 * k + 1] + m[2];
            double y = m[3] * pts[2 * k] + m[4] * pts[2 * k + 1] + m[5];
            double d = hypot(x - want[2 * k], y - want[2 * k + 1]);
            sum += d;
            worst = FL_MAX(worst, d);
        }
    }
    printf("# chip residual: mean %.2f px, max %.2f px over %zu faces\n", sum / (5.0 * n), worst, n);
    T_CHECK(sum / (5.0 * n) < 5.0);
    T_CHECK(worst < 15.0);
    t_jsonl_free(rows, n);
}

/* Project the generic head through a known rotation and recover it. */
static void test_pose_recovers_synthetic_angles(void)
{
    static const double head[6][3] = {{0, 0, 0},         {0, -330, -65},     {-225, 170, -135},
                                      {225, 170, -135},  {-150, -150, -125}, {150, -150, -125}};
    static const int idx[6] = {30, 8, 36, 45, 48, 54};
    static const double cases[][3] = {{0, 0, 0}, {20, 0, 0}, {-30, 0, 0}, {0, 15, 0},
                                      {0, -20, 0}, {0, 0, 25}, {0, 0, -10}, {15, -10, 8}};
    for (size_t c = 0; c < FL_ARRAY_LEN(cases); c++) {
        double y = cases[c][0] * M_PI / 180, p = cases[c][1] * M_PI / 180,
               r = cases[c][2] * M_PI / 180;
        /* R = Rz(-roll) Ry(yaw) Rx(pitch) in the y-up frame (roll is clockwise in the image) */
        double rz[3][3] = {{cos(-r), -sin(-r), 0}, {sin(-r), cos(-r), 0}, {0, 0, 1}};
        double ry[3][3] = {{cos(y), 0, sin(y)}, {0, 1, 0}, {-sin(y), 0, cos(y)}};
        double rx[3][3] = {{1, 0, 0}, {0, cos(p), -sin(p)}, {0, sin(p), cos(p)}};
        double t[3][3] = {{0}}, R[3][3] = {{0}};
        float lm[136] = {0}, yaw, pitch, roll;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 3; k++)
                    t[i][j] += ry[i][k] * rx[k][j];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 3; k++)
                    R[i][j] += rz[i][k] * t[k][j];
        for (int i = 0; i < 6; i++) {
            double X = head[i][0], Y = head[i][1], Z = head[i][2];
            double u = 0.3 * (R[0][0] * X + R[0][1] * Y + R[0][2] * Z) + 200;
            double v = 0.3 * (R[1][0] * X + R[1][1] * Y + R[1][2] * Z);
            lm[2 * idx[i]] = (float)u;
            lm[2 * idx[i] + 1] = (float)(150 - v); /* image y down */
        }
        fl_face_pose(lm, &yaw, &pitch, &roll);
        T_CHECK_NEAR(yaw, cases[c][0], 0.05);
        T_CHECK_NEAR(pitch, cases[c][1], 0.05);
        T_CHECK_NEAR(roll, cases[c][2], 0.05);
    }
}

/* On real landmarks: roll agrees with the eye line, and mirroring the face
 * (x -> -x, left/right points swapped) negates yaw and roll and keeps pitch. */
static void test_pose_on_golden_faces(void)
{
    /* iBUG mirror pairs: jaw, brows, nose, eyes, mouth */
    static const int mirror[68] = {16, 15, 14, 13, 12, 11, 10, 9,  8,  7,  6,  5,  4,  3,  2,  1,  0,
                                   26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 27, 28, 29, 30, 35, 34,
                                   33, 32, 31, 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54,
                                   53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60,
                                   67, 66, 65};
    char path[1024];
    size_t n = 0;
    double sum_yaw = 0;
    json_t **rows;
    if (!t_shared("golden/faceapi/faces_pipeline.jsonl", path, sizeof(path)))
        T_SKIP("../shared/golden absent");
    rows = t_jsonl_load(path, &n);
    T_REQUIRE(rows && n > 0);
    for (size_t i = 0; i < n; i++) {
        float lm[136], mir[136], yaw, pitch, roll, myaw, mpitch, mroll, dx, dy;
        T_REQUIRE(t_json_floats(json_object_get(rows[i], "landmarks68"), lm, 136) == 136);
        fl_face_pose(lm, &yaw, &pitch, &roll);
        dx = (lm[2 * 45] - lm[2 * 36]);
        dy = (lm[2 * 45 + 1] - lm[2 * 36 + 1]);
        T_CHECK_NEAR(roll, atan2(dy, dx) * 180 / M_PI, 6);
        for (int k = 0; k < 68; k++) {
            mir[2 * k] = 500 - lm[2 * mirror[k]];
            mir[2 * k + 1] = lm[2 * mirror[k] + 1];
        }
        fl_face_pose(mir, &myaw, &mpitch, &mroll);
        T_CHECK_NEAR(myaw, -yaw, 0.01);
        T_CHECK_NEAR(mroll, -roll, 0.01);
        T_CHECK_NEAR(mpitch, pitch, 0.01);
        sum_yaw += fabs(yaw);
    }
    printf("# mean |yaw| over %zu LFW faces: %.1f deg\n", n, sum_yaw / n);
    T_CHECK(sum_yaw / n < 25);
    t_jsonl_free(rows, n);
}

static void test_iou_and_nms(void)
{
    struct fl_face_box b[4] = {{0, 0, 10, 10}, {1, 1, 10, 10}, {20, 20, 5, 5}, {0, 0, 0, 5}};
    int order[4] = {0, 1, 2, 3}, keep[4], n;
    T_CHECK_NEAR(fl_face_iou(&b[0], &b[0]), 1.0, 1e-6);
    T_CHECK_NEAR(fl_face_iou(&b[0], &b[1]), 81.0 / 119.0, 1e-6);
    T_CHECK_NEAR(fl_face_iou(&b[0], &b[2]), 0, 1e-9);
    T_CHECK_NEAR(fl_face_iou(&b[0], &b[3]), 0, 1e-9);
    n = fl_face_nms(b, order, 3, 0.5f, keep);
    T_CHECK_EQ_INT(n, 2);
    T_CHECK_EQ_INT(keep[0], 0);
    T_CHECK_EQ_INT(keep[1], 2);
    n = fl_face_nms(b, order, 3, 0.7f, keep);
    T_CHECK_EQ_INT(n, 3);
}

static void test_landmark_defs(void)
{
    float lm[136], x, y;
    int seen_eye_left = 0;
    for (int i = 0; i < 68; i++) {
        lm[2 * i] = (float)i;
        lm[2 * i + 1] = (float)(2 * i);
    }
    T_CHECK_EQ_INT(fl_face_n_landmark_defs, 30);
    for (int i = 0; i < fl_face_n_landmark_defs; i++) {
        T_CHECK(fl_face_landmark_defs[i].n >= 1 && fl_face_landmark_defs[i].n <= 6);
        if (strcmp(fl_face_landmark_defs[i].type, "eyeLeft") == 0) {
            fl_face_landmark_point(lm, i, &x, &y);
            T_CHECK_NEAR(x, 38.5, 1e-6);
            T_CHECK_NEAR(y, 77.0, 1e-6);
            seen_eye_left = 1;
        }
    }
    T_CHECK(seen_eye_left);
}

/* Every type we emit must be one of the spec's LandmarkType values. */
static void test_landmark_types_in_spec(void)
{
    char path[1024];
    json_t *spec, *enumv;
    json_error_t je;
    if (!t_shared("spec/rekognition_face_ops.json", path, sizeof(path)))
        T_SKIP("../shared/spec absent");
    spec = json_load_file(path, 0, &je);
    T_REQUIRE(spec);
    enumv = json_object_get(json_object_get(json_object_get(spec, "shapes"), "LandmarkType"), "enum");
    T_REQUIRE(json_is_array(enumv));
    for (int i = 0; i < fl_face_n_landmark_defs; i++) {
        size_t k;
        json_t *e;
        int found = 0;
        json_array_foreach(enumv, k, e) found |= strcmp(json_string_value(e), fl_face_landmark_defs[i].type) == 0;
        T_CHECK(found);
        /* and in the spec's order */
        T_CHECK_EQ_STR(json_string_value(json_array_get(enumv, (size_t)i)), fl_face_landmark_defs[i].type);
    }
    json_decref(spec);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_similarity_fit_exact);
    T_RUN(test_dlib_chip_5pt_matches_models_md);
    T_RUN(test_arcface_fit_matches_golden);
    T_RUN(test_dlib_chip_on_golden_landmarks);
    T_RUN(test_pose_recovers_synthetic_angles);
    T_RUN(test_pose_on_golden_faces);
    T_RUN(test_iou_and_nms);
    T_RUN(test_landmark_defs);
    T_RUN(test_landmark_types_in_spec);
    return t_done();
}
