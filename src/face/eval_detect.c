/*
 * eval_detect.c: how well the pipeline's detector (fl_face_detect, i.e. what
 * every API operation sees) finds faces.
 *
 * Three measurements:
 *   - recall at IoU >= 0.5 against dlib's hand-labelled boxes
 *     (boxes/training.xml and boxes/testing.xml, dlib's imglab format:
 *     <image file='x'> <box top= left= width= height=/>); detections are
 *     matched one-to-one, greedily, each to the unused box of highest IoU;
 *     unmatched detections are reported as extra (dlib's sets do not label
 *     every face, so they are not all false positives);
 *   - the detection rate over every LFW image: a face whose box centre lies
 *     within 40 px of the image centre (the subject), and any face at all;
 *   - false positives: detections on the images of negative/ (no faces).
 *
 * Threading: every image is an item of fl__eval_parallel(); per-item results
 * go into per-item slots and are summed on the calling thread.
 */
#include "face/eval_int.h"

#include "core/core.h"
#include "img/img.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_GT = 64 };

enum item_kind { ITEM_BOXES, ITEM_LFW, ITEM_NEGATIVE };

struct item {
    enum item_kind kind;
    char *path; /* owned */
    int n_gt;
    struct fl_face_box gt[MAX_GT];
    /* results */
    int found, extra, n_det;
    bool centre;
};

struct job {
    struct item *items;
    int n, cap;
};

static enum fl_status add_item(struct job *j, enum item_kind kind, const char *path,
                               struct item **out, struct fl_err *err)
{
    struct item *it;
    if (j->n == j->cap) {
        int ncap = j->cap ? 2 * j->cap : 256;
        struct item *ni = fl_realloc(j->items, sizeof(*ni) * (size_t)ncap);
        if (!ni)
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        j->items = ni;
        j->cap = ncap;
    }
    it = &j->items[j->n];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->path = fl_malloc(strlen(path) + 1);
    if (!it->path)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    memcpy(it->path, path, strlen(path) + 1);
    j->n++;
    if (out)
        *out = it;
    return FL_OK;
}

/* Integer attribute `name='N'` inside [p, end). */
static bool attr_int(const char *p, const char *end, const char *name, int *v)
{
    char key[32];
    const char *a;
    snprintf(key, sizeof(key), " %s='", name);
    a = strstr(p, key);
    if (!a || a >= end)
        return false;
    return sscanf(a + strlen(key), "%d", v) == 1;
}

/* Parse one imglab XML file into items. */
static enum fl_status add_xml(struct job *j, const char *dir, const char *xml, struct fl_err *err)
{
    char path[4096];
    uint8_t *buf = NULL;
    size_t n = 0;
    char *p, *text;
    enum fl_status rc;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, xml) >= sizeof(path))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "path too long");
    rc = fl_file_read(path, 16u << 20, &buf, &n, err);
    if (rc != FL_OK)
        return rc;
    text = fl_realloc(buf, n + 1);
    if (!text) {
        fl_free(buf);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    }
    text[n] = 0;
    p = text;
    while ((p = strstr(p, "<image file='")) != NULL) {
        char *name = p + strlen("<image file='"), *q = strchr(name, '\''), *end;
        struct item *it;
        if (!q) {
            rc = fl_err_set(err, FL_ERR_INVALID_ARG, "%s: unterminated file name", xml);
            break;
        }
        end = strstr(q, "</image>");
        if (!end)
            end = text + n;
        if ((size_t)snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(q - name), name) >=
            sizeof(path)) {
            rc = fl_err_set(err, FL_ERR_INVALID_ARG, "path too long");
            break;
        }
        rc = add_item(j, ITEM_BOXES, path, &it, err);
        if (rc != FL_OK)
            break;
        for (char *b = strstr(q, "<box "); b && b < end; b = strstr(b + 1, "<box ")) {
            int top, left, w, h;
            char *be = strchr(b, '>');
            if (!be || it->n_gt == MAX_GT)
                break;
            if (attr_int(b, be, "top", &top) && attr_int(b, be, "left", &left) &&
                attr_int(b, be, "width", &w) && attr_int(b, be, "height", &h)) {
                struct fl_face_box g = {(float)left, (float)top, (float)w, (float)h};
                it->gt[it->n_gt++] = g;
            }
        }
        p = end;
    }
    fl_free(text);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every .jpg/.png of dir as items of kind (sorted, for a stable order). */
static enum fl_status add_dir(struct job *j, const char *dir, enum item_kind kind,
                              struct fl_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    int n = 0, cap = 0;
    enum fl_status rc = FL_OK;
    if (!d)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "cannot open %s", dir);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || (strcmp(de->d_name + len - 4, ".jpg") != 0 &&
                        strcmp(de->d_name + len - 4, ".png") != 0))
            continue;
        if (n == cap) {
            int ncap = cap ? 2 * cap : 64;
            char **nn = fl_realloc(names, sizeof(*nn) * (size_t)ncap);
            if (!nn) {
                rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
                goto out;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = fl_malloc(len + 1);
        if (!names[n]) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(names[n++], de->d_name, len + 1);
    }
    if (n)
        qsort(names, (size_t)n, sizeof(*names), cmp_str);
    for (int i = 0; i < n && rc == FL_OK; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path))
            rc = fl_err_set(err, FL_ERR_INVALID_ARG, "path too long");
        else
            rc = add_item(j, kind, path, NULL, err);
    }
out:
    for (int i = 0; i < n; i++)
        fl_free(names[i]);
    fl_free(names);
    closedir(d);
    return rc;
}

static enum fl_status detect_item(struct fl_face_worker *w, int k, void *ctx, struct fl_err *err)
{
    struct job *j = ctx;
    struct item *it = &j->items[k];
    struct fl_image img = {0};
    struct fl_face *faces = NULL;
    int nf = 0;
    enum fl_status rc = fl__eval_load_image(it->path, &img, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_face_detect(w, &img, 0, 0, &faces, &nf, err);
    if (rc != FL_OK)
        goto out;
    it->n_det = nf;
    if (it->kind == ITEM_BOXES) {
        bool used[MAX_GT] = {false};
        for (int f = 0; f < nf; f++) {
            int best = -1;
            float best_iou = 0.5f;
            for (int g = 0; g < it->n_gt; g++) {
                float iou = fl_face_iou(&faces[f].box, &it->gt[g]);
                if (!used[g] && iou >= best_iou) {
                    best_iou = iou;
                    best = g;
                }
            }
            if (best >= 0) {
                used[best] = true;
                it->found++;
            } else {
                it->extra++;
            }
        }
    } else if (it->kind == ITEM_LFW) {
        for (int f = 0; f < nf; f++) {
            float dx = faces[f].box.x + 0.5f * faces[f].box.w - 0.5f * (float)img.w;
            float dy = faces[f].box.y + 0.5f * faces[f].box.h - 0.5f * (float)img.h;
            it->centre |= fabsf(dx) < 40 && fabsf(dy) < 40;
        }
    }
out:
    fl_free(faces);
    fl_image_free(&img);
    return rc;
}

enum fl_status fl_eval_detect(const struct fl_eval_detect_opts *opts,
                              struct fl_eval_detect_result *out, struct fl_err *err)
{
    struct job j = {0};
    struct fl__lfw_set s = {0};
    struct fl_face_engine *e = NULL;
    struct fl_face_engine_config cfg = {opts->models_dir ? opts->models_dir : "models",
                                        FL_NN_BACKEND_XNNPACK};
    struct fl_eval_detect_result r;
    uint64_t t0 = fl_time_mono_ns();
    char path[4096];
    enum fl_status rc;

    memset(&r, 0, sizeof(r));
    if ((size_t)snprintf(path, sizeof(path), "%s/boxes", opts->data_dir) >= sizeof(path))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "path too long");
    rc = add_xml(&j, path, "training.xml", err);
    if (rc == FL_OK)
        rc = add_xml(&j, path, "testing.xml", err);
    if (rc != FL_OK)
        goto out;
    snprintf(path, sizeof(path), "%s/negative", opts->data_dir);
    rc = add_dir(&j, path, ITEM_NEGATIVE, err);
    if (rc != FL_OK)
        goto out;
    if (opts->lfw_dir) {
        rc = fl__lfw_set_open(opts->lfw_dir, false, FL_EVAL_ALIGN_DLIB68, &s, err);
        if (rc != FL_OK)
            goto out;
        for (int i = 0; i < s.n_images && rc == FL_OK; i++) {
            int p = s.person[i];
            if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s_%04d.jpg", s.dir, s.people[p],
                                 s.people[p], i - s.first[p] + 1) >= sizeof(path))
                rc = fl_err_set(err, FL_ERR_INVALID_ARG, "path too long");
            else
                rc = add_item(&j, ITEM_LFW, path, NULL, err);
        }
        if (rc != FL_OK)
            goto out;
    }
    e = fl_face_engine_new(&cfg, err);
    if (!e) {
        rc = err ? err->code : FL_ERR_INTERNAL;
        goto out;
    }
    rc = fl__eval_parallel(e, j.n, opts->threads, detect_item, &j, &opts->progress, "detecting",
                           err);
    if (rc != FL_OK)
        goto out;
    for (int k = 0; k < j.n; k++) {
        const struct item *it = &j.items[k];
        switch (it->kind) {
        case ITEM_BOXES:
            r.n_box_images++;
            r.n_boxes += it->n_gt;
            r.n_boxes_found += it->found;
            r.n_extra += it->extra;
            break;
        case ITEM_LFW:
            r.n_lfw++;
            r.n_lfw_found += it->centre;
            r.n_lfw_any += it->n_det > 0;
            break;
        case ITEM_NEGATIVE:
            r.n_negative++;
            r.n_negative_fp += it->n_det;
            r.n_negative_images_fp += it->n_det > 0;
            break;
        }
    }
    r.seconds = (double)(fl_time_mono_ns() - t0) / 1e9;
    *out = r;
out:
    for (int k = 0; k < j.n; k++)
        fl_free(j.items[k].path);
    fl_free(j.items);
    fl__lfw_set_free(&s);
    fl_face_engine_free(e);
    return rc;
}
