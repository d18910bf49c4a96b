/*
 * eval_set.c: the LFW image set, its embeddings, their cache file, and the
 * parallel loop the evaluations share.
 *
 * What: fl__lfw_set lists an LFW folder (one folder per person, files
 * Name_NNNN.jpg), and keeps per image which embedding variants exist (plain
 * and flip-averaged, for dlib and MobileFaceNet, and the fused model made from
 * the two flip-averaged ones) and whether a face was found.
 * fl__lfw_set_embed() fills in what is missing; the LFW protocol and the
 * calibration then only read vectors. Every distinct image is embedded once
 * per model however many pairs use it.
 *
 * Which face: LFW images are centred on their subject, so the detected face
 * whose box centre is nearest the image centre. When none is found the image
 * is marked FL__HAVE_NOFACE and its pairs count as errors; with the
 * centre-crop option (off by default) a fixed centre box is fed to the
 * landmark net instead and the image is marked FL__HAVE_CENTRE.
 *
 * Flip: the aligned chip is mirrored and embedded too; the variant keeps the
 * mean of both vectors (re-normalised for MobileFaceNet). Both chips' templates
 * are (nearly) left-right symmetric, so the mirrored chip is the aligned chip
 * of the mirrored face. The mirroring, the mean and the fusion are face/'s own
 * (embed.c), so the fused variant is bit for bit what the service stores.
 *
 * Alignment diagnostics (enum fl_eval_align; the API always uses the
 * first): the dlib model can instead be fed face-api's own axis-aligned crop
 * (golden/README.md §1), or the dlib chip fitted on MTCNN's five points
 * (a second, independent landmark source; MTCNN is loaded again for them,
 * one executor per worker). They exist to tell alignment losses from model
 * losses; the setting is part of the cache key.
 *
 * Cache (optional; the caller names the file, `make eval` uses
 * build/lfw-embeddings.bin; never committed): a header (magic, version,
 * image count, a hash of the sorted image names, the centre-crop flag, the
 * dimensions), then the have[] bytes, then each variant's n x dim float32
 * array, native byte order. A file that does not match the set is ignored.
 *
 * Threading: fl__eval_parallel() runs N threads with one fl_face_worker each
 * on one shared engine; items are handed out by an atomic counter; each item
 * writes only its own rows of the set, so no locks are needed besides the
 * first-error slot. The calling thread reports progress and joins.
 */
#include "face/eval_int.h"

#include "core/core.h"
#include "face/detect.h"
#include "face/face_int.h"
#include "img/img.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAGIC "FLLFWEMB"
#define CACHE_VERSION 1u

int fl__eval_var_dim(enum fl__eval_var v)
{
    return fl_face_model_info(fl__eval_var_model(v))->dim;
}

enum fl_face_model fl__eval_var_model(enum fl__eval_var v)
{
    return v == FL__VAR_FUSED         ? FL_FACE_MODEL_FUSED
           : v <= FL__VAR_DLIB_FLIP ? FL_FACE_MODEL_DLIB
                                    : FL_FACE_MODEL_MFN;
}

bool fl__lfw_set_has(const struct fl__lfw_set *s, int i, enum fl__eval_var v)
{
    unsigned want = v == FL__VAR_FUSED ? (1u << FL__VAR_DLIB_FLIP) | (1u << FL__VAR_MFN_FLIP)
                                       : 1u << v;
    return (s->have[i] & want) == want;
}

/* Compose the fused variant of every image that has both flip variants. */
static void make_fused(struct fl__lfw_set *s)
{
    for (int i = 0; i < s->n_images; i++)
        if (fl__lfw_set_has(s, i, FL__VAR_FUSED))
            fl_face_fuse(s->emb[FL__VAR_DLIB_FLIP] + (size_t)i * 128,
                         s->emb[FL__VAR_MFN_FLIP] + (size_t)i * 192,
                         s->emb[FL__VAR_FUSED] + (size_t)i * 320);
}

int fl__eval_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

enum fl_status fl__eval_load_image(const char *path, struct fl_image *out, struct fl_err *err)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    struct fl_img_decode_opts o;
    enum fl_status rc = fl_file_read(path, 64u << 20, &buf, &n, err);
    if (rc != FL_OK)
        return rc;
    fl_img_decode_opts_default(&o);
    o.min_side = 0;
    rc = fl_img_decode(buf, n, &o, out, NULL, err);
    if (rc != FL_OK && err)
        fl_err_set(err, rc, "%s: %s", path, err->msg);
    fl_free(buf);
    return rc;
}

/* ================================ The set ================================ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Number of files NAME_NNNN.jpg in dir/NAME (they are numbered 1..count). */
static int count_images(const char *dir, const char *name)
{
    char path[4096];
    DIR *d;
    struct dirent *de;
    int n = 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return 0;
    d = opendir(path);
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".jpg") == 0)
            n++;
    }
    closedir(d);
    return n;
}

void fl__lfw_set_free(struct fl__lfw_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_people; i++)
        fl_free(s->people[i]);
    fl_free(s->people);
    fl_free(s->first);
    fl_free(s->count);
    fl_free(s->person);
    fl_free(s->have);
    for (int v = 0; v < FL__VAR_COUNT_; v++)
        fl_free(s->emb[v]);
    fl_free(s->dir);
    memset(s, 0, sizeof(*s));
}

enum fl_status fl__lfw_set_open(const char *dir, bool centre_crop, int dlib_align,
                                struct fl__lfw_set *s, struct fl_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int cap = 0;
    enum fl_status rc = FL_OK;

    memset(s, 0, sizeof(*s));
    s->centre_crop = centre_crop;
    s->dlib_align = dlib_align;
    if (!d)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "cannot open the LFW folder %s", dir);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (s->n_people == cap) {
            int ncap = cap ? 2 * cap : 1024;
            char **np = fl_realloc(s->people, (size_t)ncap * sizeof(*np));
            if (!np) {
                rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
                goto out;
            }
            s->people = np;
            cap = ncap;
        }
        s->people[s->n_people] = fl_malloc(strlen(de->d_name) + 1);
        if (!s->people[s->n_people]) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(s->people[s->n_people++], de->d_name, strlen(de->d_name) + 1);
    }
    if (s->n_people == 0) {
        rc = fl_err_set(err, FL_ERR_NOT_FOUND, "no person folders in %s", dir);
        goto out;
    }
    qsort(s->people, (size_t)s->n_people, sizeof(*s->people), cmp_str);
    s->first = fl_calloc((size_t)s->n_people, sizeof(int));
    s->count = fl_calloc((size_t)s->n_people, sizeof(int));
    s->dir = fl_malloc(strlen(dir) + 1);
    if (!s->first || !s->count || !s->dir) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(s->dir, dir, strlen(dir) + 1);
    for (int p = 0; p < s->n_people; p++) {
        s->first[p] = s->n_images;
        s->count[p] = count_images(dir, s->people[p]);
        s->n_images += s->count[p];
    }
    if (s->n_images == 0) {
        rc = fl_err_set(err, FL_ERR_NOT_FOUND, "no .jpg images under %s", dir);
        goto out;
    }
    s->person = fl_calloc((size_t)s->n_images, sizeof(int));
    s->have = fl_calloc((size_t)s->n_images, 1);
    if (!s->person || !s->have) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int p = 0; p < s->n_people; p++)
        for (int k = 0; k < s->count[p]; k++)
            s->person[s->first[p] + k] = p;
    for (int v = 0; v < FL__VAR_COUNT_; v++) {
        s->emb[v] = fl_calloc((size_t)s->n_images * (size_t)fl__eval_var_dim(v), sizeof(float));
        if (!s->emb[v]) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    closedir(d);
    if (rc != FL_OK)
        fl__lfw_set_free(s);
    return rc;
}

int fl__lfw_set_find(const struct fl__lfw_set *s, const char *name, int number)
{
    const char *key = name;
    char **hit = bsearch(&key, s->people, (size_t)s->n_people, sizeof(*s->people), cmp_str);
    int p;
    if (!hit)
        return -1;
    p = (int)(hit - s->people);
    if (number < 1 || number > s->count[p])
        return -1;
    return s->first[p] + number - 1;
}

/* ================================ Cache ================================ */

struct cache_header {
    char magic[8];
    uint32_t version;
    uint32_t n_images;
    uint64_t names_hash;
    uint32_t centre_crop;
    uint32_t dims[FL__VAR_CACHED_];
};

/* FNV-1a over the person names and counts: identifies the image set. */
static uint64_t set_hash(const struct fl__lfw_set *s)
{
    uint64_t h = 1469598103934665603ull;
    for (int p = 0; p < s->n_people; p++) {
        for (const char *c = s->people[p]; *c; c++)
            h = (h ^ (uint8_t)*c) * 1099511628211ull;
        h = (h ^ (uint64_t)s->count[p]) * 1099511628211ull;
    }
    return h;
}

static void fill_header(const struct fl__lfw_set *s, struct cache_header *h)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, CACHE_MAGIC, 8);
    h->version = CACHE_VERSION;
    h->n_images = (uint32_t)s->n_images;
    h->names_hash = set_hash(s);
    h->centre_crop = (uint32_t)s->centre_crop | (uint32_t)s->dlib_align << 1;
    for (int v = 0; v < FL__VAR_CACHED_; v++)
        h->dims[v] = (uint32_t)fl__eval_var_dim(v);
}

static size_t cache_size(const struct fl__lfw_set *s)
{
    size_t n = sizeof(struct cache_header) + (size_t)s->n_images;
    for (int v = 0; v < FL__VAR_CACHED_; v++)
        n += (size_t)s->n_images * (size_t)fl__eval_var_dim(v) * sizeof(float);
    return n;
}

enum fl_status fl__lfw_set_load(struct fl__lfw_set *s, const char *path, struct fl_err *err)
{
    uint8_t *buf = NULL;
    size_t n = 0, off;
    struct cache_header want, got;
    enum fl_status rc = fl_file_read(path, cache_size(s) + 1, &buf, &n, err);
    if (rc == FL_ERR_NOT_FOUND || rc == FL_ERR_LIMIT)
        return FL_OK; /* absent, or too big to be this set's cache: ignored */
    if (rc != FL_OK)
        return rc;
    fill_header(s, &want);
    if (n != cache_size(s))
        goto out;
    memcpy(&got, buf, sizeof(got));
    if (memcmp(&got, &want, sizeof(got)) != 0)
        goto out;
    off = sizeof(got);
    memcpy(s->have, buf + off, (size_t)s->n_images);
    off += (size_t)s->n_images;
    for (int v = 0; v < FL__VAR_CACHED_; v++) {
        size_t len = (size_t)s->n_images * (size_t)fl__eval_var_dim(v) * sizeof(float);
        memcpy(s->emb[v], buf + off, len);
        off += len;
    }
    make_fused(s);
out:
    fl_free(buf);
    return FL_OK;
}

enum fl_status fl__lfw_set_save(const struct fl__lfw_set *s, const char *path, struct fl_err *err)
{
    size_t n = cache_size(s), off;
    uint8_t *buf = fl_malloc(n);
    struct cache_header h;
    enum fl_status rc;
    if (!buf)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    fill_header(s, &h);
    memcpy(buf, &h, sizeof(h));
    off = sizeof(h);
    memcpy(buf + off, s->have, (size_t)s->n_images);
    off += (size_t)s->n_images;
    for (int v = 0; v < FL__VAR_CACHED_; v++) {
        size_t len = (size_t)s->n_images * (size_t)fl__eval_var_dim(v) * sizeof(float);
        memcpy(buf + off, s->emb[v], len);
        off += len;
    }
    rc = fl_file_write_atomic(path, buf, n, err);
    fl_free(buf);
    return rc;
}

/* =========================== The parallel loop =========================== */

struct par {
    struct fl_face_engine *e;
    int n;
    enum fl_status (*fn)(struct fl_face_worker *w, int i, void *ctx, struct fl_err *err);
    void *ctx;
    atomic_int next, done, stop;
    pthread_mutex_t mu;
    enum fl_status rc; /* first error (under mu) */
    struct fl_err err;
};

static void par_fail(struct par *p, enum fl_status rc, const struct fl_err *e)
{
    pthread_mutex_lock(&p->mu);
    if (p->rc == FL_OK) {
        p->rc = rc;
        p->err = *e;
    }
    pthread_mutex_unlock(&p->mu);
    atomic_store(&p->stop, 1);
}

static void *par_thread(void *arg)
{
    struct par *p = arg;
    struct fl_err e = {0};
    struct fl_face_worker *w = fl_face_worker_new(p->e, &e);
    if (!w) {
        par_fail(p, e.code ? e.code : FL_ERR_INTERNAL, &e);
        return NULL;
    }
    while (!atomic_load(&p->stop)) {
        int i = atomic_fetch_add(&p->next, 1);
        enum fl_status rc;
        if (i >= p->n)
            break;
        rc = p->fn(w, i, p->ctx, &e);
        if (rc != FL_OK) {
            par_fail(p, rc, &e);
            break;
        }
        atomic_fetch_add(&p->done, 1);
    }
    fl_face_worker_free(w);
    return NULL;
}

enum fl_status fl__eval_parallel(struct fl_face_engine *e, int n, int threads,
                                 enum fl_status (*fn)(struct fl_face_worker *w, int i, void *ctx,
                                                      struct fl_err *err),
                                 void *ctx, const struct fl_eval_progress *progress,
                                 const char *stage, struct fl_err *err)
{
    struct par p;
    pthread_t tid[64];
    int n_started = 0;

    memset(&p, 0, sizeof(p));
    p.e = e;
    p.n = n;
    p.fn = fn;
    p.ctx = ctx;
    atomic_init(&p.next, 0);
    atomic_init(&p.done, 0);
    atomic_init(&p.stop, 0);
    pthread_mutex_init(&p.mu, NULL);
    if (threads <= 0)
        threads = fl__eval_cpus();
    if (threads > 64)
        threads = 64;
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, par_thread, &p) != 0)
            break;
        n_started++;
    }
    if (n_started == 0) {
        pthread_mutex_destroy(&p.mu);
        return fl_err_set(err, FL_ERR_INTERNAL, "cannot start a thread");
    }
    while (progress && progress->fn) {
        int d = atomic_load(&p.done);
        struct timespec ts = {0, 200 * 1000 * 1000};
        progress->fn(progress->ctx, stage, d, n);
        if (d >= n || atomic_load(&p.stop))
            break;
        nanosleep(&ts, NULL);
    }
    for (int t = 0; t < n_started; t++)
        pthread_join(tid[t], NULL);
    if (progress && progress->fn)
        progress->fn(progress->ctx, stage, atomic_load(&p.done), n);
    pthread_mutex_destroy(&p.mu);
    if (p.rc != FL_OK) {
        if (err)
            *err = p.err;
        return p.rc;
    }
    return FL_OK;
}

/* ============================== Embedding ============================== */

struct embed_job {
    struct fl__lfw_set *s;
    const int *todo; /* image indices */
    unsigned var_mask;
    /* FL_EVAL_ALIGN_MTCNN5 only: MTCNN loaded again for its five points, one
     * executor per face worker (looked up under mu) */
    struct fl__mtcnn *mt;
    pthread_mutex_t mu;
    int n_mx;
    struct {
        const struct fl_face_worker *w;
        struct fl__mtcnn_exec *x;
    } mx[64];
};

/* This worker's MTCNN executor (made on first use). NULL with err set. */
static struct fl__mtcnn_exec *job_mtcnn(struct embed_job *j, const struct fl_face_worker *w,
                                        struct fl_err *err)
{
    struct fl__mtcnn_exec *x = NULL;
    pthread_mutex_lock(&j->mu);
    for (int k = 0; k < j->n_mx && !x; k++)
        if (j->mx[k].w == w)
            x = j->mx[k].x;
    if (!x && j->n_mx < 64) {
        x = fl__mtcnn_exec_new(j->mt, FL_NN_BACKEND_XNNPACK, err);
        if (x) {
            j->mx[j->n_mx].w = w;
            j->mx[j->n_mx].x = x;
            j->n_mx++;
        }
    } else if (!x) {
        fl_err_set(err, FL_ERR_INTERNAL, "too many workers");
    }
    pthread_mutex_unlock(&j->mu);
    return x;
}

/* MTCNN's five points of the detection nearest the image centre. */
static enum fl_status mtcnn_pts5(struct embed_job *j, struct fl_face_worker *w,
                                 const struct fl_image *img, double pts5[10], bool *found,
                                 struct fl_err *err)
{
    struct fl__mtcnn_exec *x = job_mtcnn(j, w, err);
    struct fl__mtcnn_params p;
    struct fl__det *d = NULL;
    int n = 0, best = -1;
    float best_d2 = 0;
    enum fl_status rc;
    *found = false;
    if (!x)
        return err ? err->code : FL_ERR_INTERNAL;
    fl__mtcnn_params_default(img, &p);
    rc = fl__mtcnn_detect(x, img, &p, &d, &n, err);
    if (rc != FL_OK)
        return rc;
    for (int k = 0; k < n; k++) {
        float dx = d[k].box.x + 0.5f * d[k].box.w - 0.5f * (float)img->w;
        float dy = d[k].box.y + 0.5f * d[k].box.h - 0.5f * (float)img->h;
        if (d[k].has_pts5 && (best < 0 || dx * dx + dy * dy < best_d2)) {
            best = k;
            best_d2 = dx * dx + dy * dy;
        }
    }
    if (best >= 0) {
        for (int k = 0; k < 10; k++)
            pts5[k] = d[best].pts5[k];
        *found = true;
    }
    fl_free(d);
    return FL_OK;
}

/* The dlib chip fitted on five points (MODELS.md's 5-point dlib targets). */
static enum fl_status dlib_chip_5pt(const struct fl_image *img, const double pts5[10],
                                    struct fl_image *out, struct fl_err *err)
{
    double dst[10], m[6], m23[2][3];
    fl_face_dlib_chip_5pt(150, 0.25, dst);
    if (!fl_face_similarity_fit(pts5, dst, 5, m))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "degenerate five points");
    for (int k = 0; k < 6; k++)
        m23[k / 3][k % 3] = m[k];
    return fl_img_warp_affine_prefilter(img, m23, 150, 150, out, err);
}

/* The centre-crop fallback's box (off by default): LFW deep-funneled images
 * put the subject's face at the centre, about 100 by 115 px of the 250 px
 * image; the box is that region, a little below the middle, scaled to the
 * image. The landmark net then finds the points inside it. */
static struct fl_face_box centre_box(int w, int h)
{
    struct fl_face_box b;
    b.w = 0.40f * (float)w;
    b.h = 0.46f * (float)h;
    b.x = 0.5f * (float)w - 0.5f * b.w;
    b.y = 0.52f * (float)h - 0.5f * b.h;
    return b;
}

/* face-api's own recognition crop (golden/README.md §1): an axis-aligned
 * square around the eye and mouth centres, no rotation, clipped, zero-padded
 * to a centred square, TF-legacy bilinear to 150, rounded. A diagnostic
 * alternative to the dlib chip (--dlib-crop faceapi). */
static enum fl_status faceapi_chip(const struct fl_image *img, const struct fl_face *f,
                                   struct fl_image *out, struct fl_err *err)
{
    double el[2] = {0}, er[2] = {0}, mo[2] = {0}, c[2], size;
    int x, y, w, h;
    struct fl_image sq = {0};
    struct fl_image_f32 rs = {0};
    enum fl_status rc;
    for (int k = 0; k < 2; k++) {
        for (int p = 36; p < 42; p++)
            el[k] += f->lm68[2 * p + k] / 6.0;
        for (int p = 42; p < 48; p++)
            er[k] += f->lm68[2 * p + k] / 6.0;
        for (int p = 48; p < 68; p++)
            mo[k] += f->lm68[2 * p + k] / 20.0;
        c[k] = (el[k] + er[k] + mo[k]) / 3.0;
    }
    size = floor(0.5 * (hypot(mo[0] - el[0], mo[1] - el[1]) + hypot(mo[0] - er[0], mo[1] - er[1])) /
                 0.45);
    x = (int)floor(fmax(0, c[0] - 0.5 * size));
    y = (int)floor(fmax(0, c[1] - 0.43 * size));
    w = (int)fmin(size, (double)(img->w - x));
    h = (int)fmin(size, (double)(img->h - y));
    if (w < 1 || h < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "degenerate landmarks");
    rc = fl_img_crop_square(img, x, y, w, h, true, &sq, err);
    if (rc == FL_OK)
        rc = fl_img_resize_tf_f32(&sq, 150, 150, &rs, err);
    if (rc == FL_OK)
        rc = fl_image_f32_to_u8(&rs, out, err);
    fl_image_f32_free(&rs);
    fl_image_free(&sq);
    return rc;
}

/* Embed face f of img into every variant in mask for image i. */
static enum fl_status embed_face(struct fl_face_worker *w, const struct fl_image *img,
                                 const struct fl_face *f, const double *pts5,
                                 struct fl__lfw_set *s, int i, unsigned mask, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    for (int m = FL_FACE_MODEL_DLIB; m <= FL_FACE_MODEL_MFN; m++) {
        enum fl__eval_var plain = m == FL_FACE_MODEL_DLIB ? FL__VAR_DLIB : FL__VAR_MFN;
        enum fl__eval_var flip = m == FL_FACE_MODEL_DLIB ? FL__VAR_DLIB_FLIP : FL__VAR_MFN_FLIP;
        const struct fl_face_model_info *mi = fl_face_model_info((enum fl_face_model)m);
        int dim = mi->dim;
        float a[FL_FACE_MAX_DIM], b[FL_FACE_MAX_DIM];
        struct fl_image chip = {0}, mirror = {0};
        if (!(mask & ((1u << plain) | (1u << flip))))
            continue;
        if (m == FL_FACE_MODEL_DLIB && s->dlib_align == FL_EVAL_ALIGN_FACEAPI)
            rc = faceapi_chip(img, f, &chip, err);
        else if (m == FL_FACE_MODEL_DLIB && s->dlib_align == FL_EVAL_ALIGN_MTCNN5 && pts5)
            rc = dlib_chip_5pt(img, pts5, &chip, err);
        else if (m == FL_FACE_MODEL_DLIB && s->dlib_align == FL_EVAL_ALIGN_MTCNN5) {
            /* the centre crop has no MTCNN points: the five from its 68 landmarks */
            double p5[10];
            fl_face_5pt_from_68(f->lm68, p5);
            rc = dlib_chip_5pt(img, p5, &chip, err);
        }
        else
            rc = fl_face_chip(w, img, f, (enum fl_face_model)m, &chip, err);
        if (rc == FL_OK)
            rc = fl_face_embed_chip(w, &chip, (enum fl_face_model)m, a, err);
        if (rc == FL_OK && (mask & (1u << flip))) {
            rc = fl_face_chip_mirror(&chip, &mirror, err);
            if (rc == FL_OK)
                rc = fl_face_embed_chip(w, &mirror, (enum fl_face_model)m, b, err);
        }
        fl_image_free(&chip);
        fl_image_free(&mirror);
        if (rc != FL_OK)
            return rc;
        memcpy(s->emb[plain] + (size_t)i * (size_t)dim, a, sizeof(float) * (size_t)dim);
        if (mask & (1u << flip))
            fl_face_flip_mean((enum fl_face_model)m, a, b, s->emb[flip] + (size_t)i * (size_t)dim);
        s->have[i] |= (uint8_t)((1u << plain) | ((mask & (1u << flip)) ? 1u << flip : 0));
    }
    return FL_OK;
}

static enum fl_status embed_item(struct fl_face_worker *w, int k, void *ctx, struct fl_err *err)
{
    struct embed_job *j = ctx;
    struct fl__lfw_set *s = j->s;
    int i = j->todo[k], p = s->person[i];
    char path[4096];
    struct fl_image img = {0};
    struct fl_face *faces = NULL, one;
    int nf = 0, best = -1;
    float best_d2 = 0;
    enum fl_status rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s_%04d.jpg", s->dir, s->people[p],
                         s->people[p], i - s->first[p] + 1) >= sizeof(path))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "path too long");
    rc = fl__eval_load_image(path, &img, err);
    if (rc != FL_OK)
        goto out;
    rc = fl_face_detect(w, &img, 0, 0, &faces, &nf, err);
    if (rc != FL_OK)
        goto out;
    for (int f = 0; f < nf; f++) {
        float dx = faces[f].box.x + 0.5f * faces[f].box.w - 0.5f * (float)img.w;
        float dy = faces[f].box.y + 0.5f * faces[f].box.h - 0.5f * (float)img.h;
        if (best < 0 || dx * dx + dy * dy < best_d2) {
            best = f;
            best_d2 = dx * dx + dy * dy;
        }
    }
    s->have[i] = (uint8_t)((s->have[i] & 0x0fu) | FL__HAVE_DONE);
    if (best >= 0 && s->dlib_align == FL_EVAL_ALIGN_MTCNN5) {
        double pts5[10];
        bool ok = false;
        rc = mtcnn_pts5(j, w, &img, pts5, &ok, err);
        if (rc == FL_OK && ok)
            rc = embed_face(w, &img, &faces[best], pts5, s, i, j->var_mask, err);
        else if (rc == FL_OK)
            s->have[i] |= FL__HAVE_NOFACE;
    } else if (best >= 0) {
        rc = embed_face(w, &img, &faces[best], NULL, s, i, j->var_mask, err);
    } else if (s->centre_crop) {
        memset(&one, 0, sizeof(one));
        one.box = centre_box(img.w, img.h);
        rc = fl__face_landmarks_from_box(w, &img, one.box, one.lm68, err);
        if (rc == FL_OK)
            rc = embed_face(w, &img, &one, NULL, s, i, j->var_mask, err);
        s->have[i] |= FL__HAVE_NOFACE | FL__HAVE_CENTRE;
    } else {
        s->have[i] |= FL__HAVE_NOFACE;
    }
out:
    fl_free(faces);
    fl_image_free(&img);
    return rc;
}

/* Does image i still need processing for var_mask? */
static bool needs(const struct fl__lfw_set *s, int i, unsigned var_mask)
{
    uint8_t h = s->have[i];
    if (!(h & FL__HAVE_DONE))
        return true;
    if ((h & FL__HAVE_NOFACE) && !(h & FL__HAVE_CENTRE))
        return false; /* nothing to embed */
    return (h & var_mask) != var_mask;
}

enum fl_status fl__lfw_set_embed(struct fl__lfw_set *s, const uint8_t *need_img,
                                 unsigned var_mask, const char *models_dir, int threads,
                                 const struct fl_eval_progress *progress, int *n_embedded,
                                 struct fl_err *err)
{
    int *todo = fl_malloc(sizeof(int) * (size_t)s->n_images), n = 0;
    struct fl_face_engine *e = NULL;
    struct fl_face_engine_config cfg = {models_dir ? models_dir : "models",
                                        FL_NN_BACKEND_XNNPACK};
    struct embed_job job;
    enum fl_status rc = FL_OK;

    *n_embedded = 0;
    if (!todo)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    if (var_mask & (1u << FL__VAR_FUSED))
        var_mask = (var_mask & ~(1u << FL__VAR_FUSED)) | (1u << FL__VAR_DLIB_FLIP) |
                   (1u << FL__VAR_MFN_FLIP);
    for (int i = 0; i < s->n_images; i++)
        if ((!need_img || need_img[i]) && needs(s, i, var_mask))
            todo[n++] = i;
    if (n == 0)
        goto out;
    e = fl_face_engine_new(&cfg, err);
    if (!e) {
        rc = err ? err->code : FL_ERR_INTERNAL;
        goto out;
    }
    memset(&job, 0, sizeof(job));
    job.s = s;
    job.todo = todo;
    job.var_mask = var_mask;
    pthread_mutex_init(&job.mu, NULL);
    if (s->dlib_align == FL_EVAL_ALIGN_MTCNN5) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/expo/android/src/main/assets", cfg.models_dir);
        job.mt = fl__mtcnn_load(dir, err);
        if (!job.mt) {
            rc = err ? err->code : FL_ERR_INTERNAL;
            pthread_mutex_destroy(&job.mu);
            goto out;
        }
    }
    rc = fl__eval_parallel(e, n, threads, embed_item, &job, progress, "embedding", err);
    for (int k = 0; k < job.n_mx; k++)
        fl__mtcnn_exec_free(job.mx[k].x);
    fl__mtcnn_free(job.mt);
    pthread_mutex_destroy(&job.mu);
    if (rc == FL_OK)
        *n_embedded = n;
out:
    if (rc == FL_OK)
        make_fused(s);
    fl_face_engine_free(e);
    fl_free(todo);
    return rc;
}
