/*
 * calibrate.c: measure each face model's distance distributions on LFW and
 * turn them into the distance -> Similarity table (calibration_table.c).
 *
 * What: every one of LFW's 13,233 images is embedded (the face nearest the
 * centre; images without a detected face are left out and counted), then the
 * distance of every pair of found images is histogrammed: cross-identity
 * pairs (~8.7e7) give the false-match rate FMR(t) = share with distance <= t,
 * same-identity pairs (~2.4e5) the true-match rate TMR(t).
 *
 * The table's anchors (Similarity: where):
 *   100: distance 0;
 *   99, 95, 90, 80, 70: the distance at which FMR = 10^(-3 - 2 (S - 80) / 19),
 *        i.e. 1e-5 at 99 and 1e-3 at 80, log-linear in between and below
 *        (95: 2.6e-5, 90: 8.9e-5, 70: 1.1e-2);
 *   50: the median cross-identity distance (FMR 0.5);
 *   0:  the largest cross-identity distance seen.
 * Between anchors Similarity is linear in distance (calibration.c). Anchor
 * distances are made strictly increasing, so the map is monotone.
 *
 * Histograms: 2^18 bins over [0, 4] (cosine distance is at most 2; dlib's
 * embeddings have norms of about 1.3 to 1.6, so its distances stay under 3.3);
 * anything beyond lands in the last bin. A bin is 1.5e-5 wide, far under the
 * spacing of the anchors; within a bin counts are taken as uniform when
 * inverting FMR.
 *
 * Threading: the pair loop runs on N threads, each over an interleaved set
 * of rows with its own histograms, summed at the end. The distance kernel is
 * a dot product with eight independent accumulators (the compiler vectorises
 * it); dlib's Euclidean distance comes from the norms and the dot.
 */
#include "face/eval_int.h"

#include "core/core.h"
#include "face/calibration.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NBINS (1 << 18)
#define DMAX 4.0

/* Similarity of each anchor, descending; FMR target per anchor (negative:
 * special, see the essay). */
static const double anchor_sim[FL_EVAL_CAL_POINTS] = {100, 99, 95, 90, 80, 70, 50, 0};

static double anchor_fmr(double sim)
{
    return pow(10.0, -3.0 - 2.0 * (sim - 80.0) / 19.0);
}

struct pairs_job {
    const float *x;     /* m x dim, packed */
    const float *norm2; /* m squared norms */
    const int *pid;     /* m person ids */
    int m, dim, n_threads;
    bool cosine;
};

struct pairs_thread {
    const struct pairs_job *job;
    int t;
    uint64_t *imp, *gen; /* NBINS each */
    double max_imp;
};

static inline float dot8(const float *a, const float *b, int dim)
{
    float acc[8] = {0};
    for (int d = 0; d < dim; d += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += a[d + k] * b[d + k];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static void *pairs_thread_main(void *arg)
{
    struct pairs_thread *pt = arg;
    const struct pairs_job *j = pt->job;
    const double scale = NBINS / DMAX;
    for (int i = pt->t; i < j->m; i += j->n_threads) {
        const float *a = j->x + (size_t)i * (size_t)j->dim;
        for (int k = i + 1; k < j->m; k++) {
            float dp = dot8(a, j->x + (size_t)k * (size_t)j->dim, j->dim);
            double d = j->cosine ? 1.0 - (double)dp
                                 : sqrt(fmax(0.0, (double)j->norm2[i] + j->norm2[k] - 2.0 * dp));
            long bin = (long)(d * scale);
            if (bin < 0)
                bin = 0;
            if (bin >= NBINS)
                bin = NBINS - 1;
            if (j->pid[i] == j->pid[k]) {
                pt->gen[bin]++;
            } else {
                pt->imp[bin]++;
                if (d > pt->max_imp)
                    pt->max_imp = d;
            }
        }
    }
    return NULL;
}

/* Share of the histogram at distance <= t (uniform within a bin). */
static double cdf(const uint64_t *h, uint64_t total, double t)
{
    double x = t * NBINS / DMAX, acc = 0;
    long b = (long)x;
    if (total == 0 || t < 0)
        return 0;
    if (b >= NBINS)
        return 1;
    for (long k = 0; k < b; k++)
        acc += (double)h[k];
    acc += (x - (double)b) * (double)h[b];
    return acc / (double)total;
}

/* The distance at which the cumulative share reaches q. */
static double quantile(const uint64_t *h, uint64_t total, double q)
{
    double want = q * (double)total, acc = 0;
    for (long k = 0; k < NBINS; k++) {
        if (acc + (double)h[k] >= want && h[k] > 0)
            return ((double)k + (want - acc) / (double)h[k]) * DMAX / NBINS;
        acc += (double)h[k];
    }
    return DMAX;
}

/* Histogram every pair of found images of variant v; fill the anchors. */
static enum fl_status measure(const struct fl__lfw_set *s, enum fl__eval_var v, int threads,
                              struct fl_eval_cal_model *out, struct fl_err *err)
{
    int dim = fl__eval_var_dim(v), m = 0;
    float *x = NULL, *norm2 = NULL;
    int *pid = NULL;
    uint64_t *hist = NULL, *imp, *gen, n_imp = 0, n_gen = 0;
    struct pairs_job job;
    struct pairs_thread pt[64];
    pthread_t tid[64];
    int n_started = 0;
    double max_imp = 0;
    enum fl_status rc = FL_OK;

    if (threads <= 0)
        threads = fl__eval_cpus();
    if (threads > 64)
        threads = 64;
    x = fl_malloc(sizeof(float) * (size_t)s->n_images * (size_t)dim);
    norm2 = fl_malloc(sizeof(float) * (size_t)s->n_images);
    pid = fl_malloc(sizeof(int) * (size_t)s->n_images);
    hist = fl_calloc((size_t)(threads + 1) * 2 * NBINS, sizeof(uint64_t));
    if (!x || !norm2 || !pid || !hist) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < s->n_images; i++) {
        const float *e = s->emb[v] + (size_t)i * (size_t)dim;
        double n2 = 0;
        if (!fl__lfw_set_has(s, i, v))
            continue;
        memcpy(x + (size_t)m * (size_t)dim, e, sizeof(float) * (size_t)dim);
        for (int k = 0; k < dim; k++)
            n2 += (double)e[k] * e[k];
        norm2[m] = (float)n2;
        pid[m] = s->person[i];
        m++;
    }
    job.x = x;
    job.norm2 = norm2;
    job.pid = pid;
    job.m = m;
    job.dim = dim;
    job.n_threads = threads;
    job.cosine = fl_face_model_info(fl__eval_var_model(v))->normalised;
    for (int t = 0; t < threads; t++) {
        pt[t].job = &job;
        pt[t].t = t;
        pt[t].imp = hist + (size_t)(t + 1) * 2 * NBINS;
        pt[t].gen = pt[t].imp + NBINS;
        pt[t].max_imp = 0;
    }
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, pairs_thread_main, &pt[t]) != 0)
            break;
        n_started++;
    }
    /* rows a thread could not take are done here */
    for (int t = n_started; t < threads; t++)
        pairs_thread_main(&pt[t]);
    for (int t = 0; t < n_started; t++)
        pthread_join(tid[t], NULL);
    imp = hist;
    gen = hist + NBINS;
    for (int t = 0; t < threads; t++) {
        for (long k = 0; k < NBINS; k++) {
            imp[k] += pt[t].imp[k];
            gen[k] += pt[t].gen[k];
        }
        if (pt[t].max_imp > max_imp)
            max_imp = pt[t].max_imp;
    }
    for (long k = 0; k < NBINS; k++) {
        n_imp += imp[k];
        n_gen += gen[k];
    }
    if (n_imp == 0 || n_gen == 0) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, "no pairs to calibrate on");
        goto out;
    }

    memset(out, 0, sizeof(*out));
    out->name = fl_face_model_info(fl__eval_var_model(v))->name;
    out->n_impostor = (long long)n_imp;
    out->n_genuine = (long long)n_gen;
    out->n_points = FL_EVAL_CAL_POINTS;
    for (int k = 0; k < FL_EVAL_CAL_POINTS; k++) {
        struct fl_eval_cal_point *p = &out->points[k];
        double sim = anchor_sim[k], d;
        if (sim >= 100)
            d = 0;
        else if (sim <= 0)
            d = max_imp;
        else if (sim <= 50)
            d = quantile(imp, n_imp, 0.5);
        else
            d = quantile(imp, n_imp, anchor_fmr(sim));
        if (k > 0 && d <= out->points[k - 1].distance + 1e-6)
            d = out->points[k - 1].distance + 1e-6;
        p->similarity = sim;
        p->distance = d;
        p->fmr = cdf(imp, n_imp, d);
        p->tmr = cdf(gen, n_gen, d);
    }
out:
    fl_free(x);
    fl_free(norm2);
    fl_free(pid);
    fl_free(hist);
    return rc;
}

/* Write the generated C table. */
static enum fl_status write_table(const struct fl_eval_calibrate_opts *o,
                                  const struct fl_eval_calibrate_result *r, struct fl_err *err)
{
    char *text = NULL;
    size_t cap = 16384, len = 0;
    time_t now = time(NULL);
    struct tm tm;
    char date[32];
    enum fl_status rc;

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
    text = fl_malloc(cap);
    if (!text)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
#define OUT(...)                                                                                   \
    do {                                                                                           \
        int n_ = snprintf(text + len, cap - len, __VA_ARGS__);                                     \
        if (n_ < 0 || (size_t)n_ >= cap - len) {                                                   \
            fl_free(text);                                                                         \
            return fl_err_set(err, FL_ERR_INTERNAL, "calibration table too long");                \
        }                                                                                          \
        len += (size_t)n_;                                                                         \
    } while (0)
    OUT("/*\n * calibration_table.c: GENERATED, do not edit. Distance -> Similarity anchors\n"
        " * per face model (see calibration.h and calibrate.c for the rule).\n *\n"
        " * Regenerate (needs ../shared and the models; this run: %.0f s, %d images\n"
        " * embedded, the rest from the cache; `make eval` times a run from\n"
        " * scratch):\n *   %s\n *\n"
        " * Measured %s on LFW deep-funneled: %d images, %d without a detected face\n"
        " * (left out). fmr/tmr: shares of cross-/same-identity pairs at distance <= the\n"
        " * anchor.\n */\n",
        r->seconds, r->n_embedded, o->command ? o->command : "build/facelink eval calibrate", date, r->n_images,
        r->n_no_face);
    OUT("#include \"face/calibration.h\"\n\n");
    OUT("const struct fl__face_cal_table fl__face_cal_tables[FL_FACE_MODEL_COUNT_] = {\n");
    for (int mi = 0; mi < FL_FACE_MODEL_COUNT_; mi++) {
        static const char *const enum_names[FL_FACE_MODEL_COUNT_] = {
            "FL_FACE_MODEL_DLIB", "FL_FACE_MODEL_MFN", "FL_FACE_MODEL_FUSED"};
        const struct fl_eval_cal_model *cm = &r->models[mi];
        OUT("    [%s] =\n        {\"%s\",\n         %d,\n         {\n", enum_names[mi],
            fl_face_model_info((enum fl_face_model)mi)->id, cm->n_points);
        for (int k = 0; k < cm->n_points; k++)
            OUT("             {%#.9gf, %.1ff, %.6g, %.6g},\n", cm->points[k].distance,
                cm->points[k].similarity, cm->points[k].fmr, cm->points[k].tmr);
        OUT("         },\n         %lldLL,\n         %lldLL},\n", cm->n_impostor, cm->n_genuine);
    }
    OUT("};\n");
#undef OUT
    rc = fl_file_write_atomic(o->out_c_path, text, len, err);
    fl_free(text);
    return rc;
}

_Static_assert(FL_FACE_MODEL_COUNT_ == 3, "one calibration row per face model");

enum fl_status fl_eval_calibrate(const struct fl_eval_calibrate_opts *opts,
                                 struct fl_eval_calibrate_result *out, struct fl_err *err)
{
    struct fl__lfw_set s;
    struct fl_eval_calibrate_result r;
    uint64_t t0 = fl_time_mono_ns(), t1;
    /* each model's variant, in enum fl_face_model order */
    static const enum fl__eval_var vars[FL_FACE_MODEL_COUNT_] = {FL__VAR_DLIB, FL__VAR_MFN,
                                                                 FL__VAR_FUSED};
    unsigned mask = (1u << FL__VAR_DLIB) | (1u << FL__VAR_MFN) | (1u << FL__VAR_FUSED);
    enum fl_status rc;

    memset(&r, 0, sizeof(r));
    rc = fl__lfw_set_open(opts->images_dir, false, FL_EVAL_ALIGN_DLIB68, &s, err);
    if (rc != FL_OK)
        return rc;
    if (opts->cache_path) {
        rc = fl__lfw_set_load(&s, opts->cache_path, err);
        if (rc != FL_OK)
            goto out;
    }
    rc = fl__lfw_set_embed(&s, NULL, mask, opts->models_dir, opts->threads, &opts->progress,
                           &r.n_embedded, err);
    if (rc != FL_OK)
        goto out;
    if (opts->cache_path && r.n_embedded > 0) {
        rc = fl__lfw_set_save(&s, opts->cache_path, err);
        if (rc != FL_OK)
            goto out;
    }
    r.n_images = s.n_images;
    for (int i = 0; i < s.n_images; i++)
        r.n_no_face += (s.have[i] & FL__HAVE_NOFACE) != 0;
    t1 = fl_time_mono_ns();
    for (int mi = 0; mi < FL_FACE_MODEL_COUNT_; mi++) {
        if (opts->progress.fn)
            opts->progress.fn(opts->progress.ctx, "pairs", mi, FL_FACE_MODEL_COUNT_);
        rc = measure(&s, vars[mi], opts->threads, &r.models[mi], err);
        if (rc != FL_OK)
            goto out;
    }
    r.n_models = FL_FACE_MODEL_COUNT_;
    if (opts->progress.fn)
        opts->progress.fn(opts->progress.ctx, "pairs", FL_FACE_MODEL_COUNT_, FL_FACE_MODEL_COUNT_);
    r.seconds_pairs = (double)(fl_time_mono_ns() - t1) / 1e9;
    r.seconds = (double)(fl_time_mono_ns() - t0) / 1e9;
    if (opts->out_c_path) {
        rc = write_table(opts, &r, err);
        if (rc != FL_OK)
            goto out;
    }
    *out = r;
out:
    fl__lfw_set_free(&s);
    return rc;
}
