/*
 * detectors.c: compare the face detectors on the same images (a benchmark,
 * not a test): recall at IoU 0.5 against dlib's hand-labelled boxes
 * (data/detect/boxes/{training,testing}.xml), detections on the group
 * photos, false positives on data/detect/negative/, the detection rate on
 * LFW (a face within 40 px of the 250x250 image's centre), and median
 * milliseconds per image on one core.
 *
 *   build/bench/detectors [SHARED_DIR] [N_LFW]
 */
#include "bench_util.h"
#include "face/detect.h"
#include "img/img.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DET_MTCNN, DET_SSD, DET_TINY416, DET_TINY608, N_DET };
static const char *const det_names[N_DET] = {"mtcnn", "ssd512", "tiny416", "tiny608"};

static struct fl__mtcnn_exec *g_mt;
static struct fl__faceapi_det_exec *g_fa;

static int run(int det, const struct fl_image *img, struct fl__det **d, int *n, double *ms)
{
    struct fl__mtcnn_params p;
    uint64_t t0 = fl_time_mono_ns();
    enum fl_status rc;
    switch (det) {
    case DET_MTCNN:
        fl__mtcnn_params_default(img, &p);
        rc = fl__mtcnn_detect(g_mt, img, &p, d, n, NULL);
        break;
    case DET_SSD:
        rc = fl__faceapi_ssd_detect(g_fa, img, 0.5f, d, n, NULL);
        break;
    case DET_TINY416:
        rc = fl__faceapi_tiny_detect(g_fa, img, 416, 0.5f, d, n, NULL);
        break;
    default:
        rc = fl__faceapi_tiny_detect(g_fa, img, 608, 0.5f, d, n, NULL);
        break;
    }
    *ms = (double)(fl_time_mono_ns() - t0) / 1e6;
    return rc == FL_OK;
}

static int load(const char *path, struct fl_image *img)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    struct fl_img_decode_opts o;
    int ok;
    fl_img_decode_opts_default(&o);
    o.min_side = 0;
    if (fl_file_read(path, 64u << 20, &buf, &n, NULL) != FL_OK)
        return 0;
    ok = fl_img_decode(buf, n, &o, img, NULL, NULL) == FL_OK;
    fl_free(buf);
    return ok;
}

struct stats {
    int gt, found, dets, false_pos, neg_fp, lfw_n, lfw_found;
    double ms[20000];
    int n_ms;
};
static struct stats g_st[N_DET];

static void add_ms(struct stats *s, double ms)
{
    if (s->n_ms < (int)(sizeof(s->ms) / sizeof(s->ms[0])))
        s->ms[s->n_ms++] = ms;
}

/* One XML file of dlib's imglab format: <image file='x'> <box top left width height/>. */
static void eval_xml(const char *dir, const char *xml)
{
    char path[4096];
    uint8_t *buf = NULL;
    size_t n = 0;
    char *p;
    snprintf(path, sizeof(path), "%s/%s", dir, xml);
    if (fl_file_read(path, 16u << 20, &buf, &n, NULL) != FL_OK) {
        printf("cannot read %s\n", path);
        return;
    }
    p = (char *)buf;
    while ((p = strstr(p, "<image file='")) != NULL) {
        char file[512], *end = strstr(p, "</image>");
        struct fl_face_box gt[256];
        int n_gt = 0;
        struct fl_image img = {0};
        p += strlen("<image file='");
        snprintf(file, sizeof(file), "%.*s", (int)(strchr(p, '\'') - p), p);
        for (char *b = strstr(p, "<box "); b && b < end && n_gt < 256; b = strstr(b + 1, "<box ")) {
            int top, left, w, h;
            if (sscanf(strstr(b, "top='"), "top='%d'", &top) == 1 &&
                sscanf(strstr(b, "left='"), "left='%d'", &left) == 1 &&
                sscanf(strstr(b, "width='"), "width='%d'", &w) == 1 &&
                sscanf(strstr(b, "height='"), "height='%d'", &h) == 1) {
                struct fl_face_box g = {(float)left, (float)top, (float)w, (float)h};
                gt[n_gt++] = g;
            }
        }
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (!load(path, &img)) {
            printf("cannot decode %s\n", path);
            continue;
        }
        for (int det = 0; det < N_DET; det++) {
            struct fl__det *d = NULL;
            int nd = 0, matched_det = 0;
            double ms;
            bool used[256] = {false};
            if (!run(det, &img, &d, &nd, &ms))
                continue;
            add_ms(&g_st[det], ms);
            g_st[det].gt += n_gt;
            g_st[det].dets += nd;
            /* greedy one-to-one matching at IoU >= 0.5 */
            for (int i = 0; i < nd; i++) {
                int best = -1;
                float best_iou = 0.5f;
                for (int k = 0; k < n_gt; k++) {
                    float iou = fl_face_iou(&d[i].box, &gt[k]);
                    if (!used[k] && iou >= best_iou) {
                        best_iou = iou;
                        best = k;
                    }
                }
                if (best >= 0) {
                    used[best] = true;
                    matched_det++;
                }
            }
            g_st[det].found += matched_det;
            g_st[det].false_pos += nd - matched_det;
            fl_free(d);
        }
        fl_image_free(&img);
    }
    fl_free(buf);
}

static void eval_dir(const char *dir, bool negatives, const char *label)
{
    DIR *dp = opendir(dir);
    struct dirent *de;
    if (!dp)
        return;
    printf("%s:\n", label);
    while ((de = readdir(dp)) != NULL) {
        char path[4096];
        struct fl_image img = {0};
        if (!strstr(de->d_name, ".jpg") && !strstr(de->d_name, ".png"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!load(path, &img))
            continue;
        if (!negatives)
            printf("  %-20s %4dx%-4d", de->d_name, img.w, img.h);
        for (int det = 0; det < N_DET; det++) {
            struct fl__det *d = NULL;
            int nd = 0;
            double ms;
            if (!run(det, &img, &d, &nd, &ms))
                continue;
            add_ms(&g_st[det], ms);
            if (negatives)
                g_st[det].neg_fp += nd;
            else
                printf(" %s %3d", det_names[det], nd);
            fl_free(d);
        }
        if (!negatives)
            printf("\n");
        fl_image_free(&img);
    }
    closedir(dp);
}

/* The first n LFW images (people in people order), one face expected near the centre. */
static void eval_lfw(const char *root, int n_max)
{
    DIR *dp = opendir(root);
    struct dirent *de;
    char **names = NULL;
    int n = 0, cap = 0;
    if (!dp)
        return;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            names = realloc(names, (size_t)cap * sizeof(*names));
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof(*names), (int (*)(const void *, const void *))strcmp);
    for (int i = 0, done = 0; i < n && done < n_max; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s_0001.jpg", root, names[i], names[i]) >=
            sizeof(path))
            continue;
        struct fl_image img = {0};
        if (!load(path, &img))
            continue;
        done++;
        for (int det = 0; det < N_DET; det++) {
            struct fl__det *d = NULL;
            int nd = 0, hit = 0;
            double ms;
            if (!run(det, &img, &d, &nd, &ms))
                continue;
            add_ms(&g_st[det], ms);
            for (int k = 0; k < nd; k++) {
                float cx = d[k].box.x + d[k].box.w / 2, cy = d[k].box.y + d[k].box.h / 2;
                hit |= fabsf(cx - img.w / 2.0f) < 40 && fabsf(cy - img.h / 2.0f) < 40;
            }
            g_st[det].lfw_n++;
            g_st[det].lfw_found += hit;
            fl_free(d);
        }
        fl_image_free(&img);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int main(int argc, char **argv)
{
    const char *shared = argc > 1 ? argv[1] : "../shared";
    int n_lfw = argc > 2 ? atoi(argv[2]) : 500;
    char path[4096];
    struct fl_err e;
    struct fl__mtcnn *mt;
    struct fl__faceapi_det *fa;

    fl_core_init();
    mt = fl__mtcnn_load("models", &e);
    fa = mt ? fl__faceapi_det_load("models/face-api/model", &e) : NULL;
    if (!mt || !fa) {
        printf("cannot load models: %s\n", e.msg);
        return 1;
    }
    g_mt = fl__mtcnn_exec_new(mt, FL_NN_BACKEND_XNNPACK, &e);
    g_fa = fl__faceapi_det_exec_new(fa, FL_NN_BACKEND_XNNPACK, &e);
    snprintf(path, sizeof(path), "%s/data/detect/boxes", shared);
    eval_xml(path, "training.xml");
    eval_xml(path, "testing.xml");
    snprintf(path, sizeof(path), "%s/data/detect/group", shared);
    eval_dir(path, false, "faces found in data/detect/group");
    snprintf(path, sizeof(path), "%s/data/detect/negative", shared);
    eval_dir(path, true, "negatives");
    snprintf(path, sizeof(path), "%s/data/lfw/lfw-deepfunneled-250x250", shared);
    eval_lfw(path, n_lfw);

    printf("\n%-8s %14s %8s %12s %16s %10s\n", "detector", "recall@0.5", "extra", "negatives FP",
           "LFW centre face", "median ms");
    for (int det = 0; det < N_DET; det++) {
        struct stats *s = &g_st[det];
        qsort(s->ms, (size_t)s->n_ms, sizeof(double), cmp_double);
        printf("%-8s %5d/%-3d %4.1f%% %8d %12d %7d/%-4d %5.1f%% %10.1f\n", det_names[det], s->found,
               s->gt, s->gt ? 100.0 * s->found / s->gt : 0, s->false_pos, s->neg_fp, s->lfw_found,
               s->lfw_n, s->lfw_n ? 100.0 * s->lfw_found / s->lfw_n : 0,
               s->n_ms ? s->ms[s->n_ms / 2] : 0);
    }
    fl__mtcnn_exec_free(g_mt);
    fl__faceapi_det_exec_free(g_fa);
    fl__mtcnn_free(mt);
    fl__faceapi_det_free(fa);
    return 0;
}
