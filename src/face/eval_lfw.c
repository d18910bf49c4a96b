/*
 * eval_lfw.c: LFW verification, the standard 10-fold protocol.
 *
 * What: pairs.txt (View 2) holds 10 folds of 300 same-person and 300
 * different-person pairs. For each fold, the threshold that maximises the
 * accuracy on the other nine folds is applied to it; we report the mean and
 * the (population) standard deviation of the ten test accuracies, as
 * dlib's and most published LFW numbers do.
 *
 * Missing faces are errors: a pair with an image in which no face was
 * detected is wrong whatever the threshold (it cannot move the threshold, as
 * it is wrong for all of them). acc_found is the same protocol restricted to
 * the pairs whose two faces were found, to separate detection from
 * recognition. With opts.centre_crop, such images are embedded from a fixed
 * centre box instead, and the result says how many.
 *
 * Scores: higher = same person. A model's score is minus its distance
 * (Euclidean for dlib, 1 - cosine for MobileFaceNet and the fused model,
 * whose vectors are flip-averaged by construction, so its row is reported
 * once, as a flip row). The zfusion score (a diagnostic: score-level fusion
 * that no single vector can store) is (z_dlib + z_mfn) / 2 where
 * z_m = (s_m - mean_m) / sd_m and mean_m, sd_m are computed per fold on the
 * nine training folds' pairs (both faces found), so the test fold never
 * informs its own normalisation or threshold.
 *
 * TAR at FAR 1e-3: all pairs pooled (zfusion: z-statistics of all pairs); the
 * threshold is the strictest that accepts at most floor(1e-3 x negatives)
 * negative pairs; TAR is the share of positive pairs accepted. With 3,000
 * negatives this is coarse (3 false accepts); the calibration
 * (fl_eval_calibrate) measures false-match rates on ~8.7e7 pairs.
 *
 * Threading: embedding is parallel (eval_set.c); the protocol itself is a
 * few thousand scores and runs on the calling thread.
 */
#include "face/eval_int.h"

#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pair {
    int a, b; /* image indices */
    int fold;
    bool same;
};

const char *fl_eval_scorer_name(enum fl_eval_scorer s)
{
    static const char *const names[] = {"dlib", "mobilefacenet", "fused", "zfusion"};
    return (unsigned)s < FL_EVAL_SCORER_COUNT_ ? names[s] : "?";
}

/* Parse pairs.txt into *out (fl_free), keeping the first `per_block`
 * pairs of each positive and negative block (0: all). */
static enum fl_status parse_pairs(const char *path, const struct fl__lfw_set *s, int per_block,
                                  struct pair **out, int *n_out, int *n_folds,
                                  struct fl_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char *p, *line, *save = NULL;
    int folds = 0, per = 0, n = 0, line_no = 1;
    struct pair *pairs = NULL;
    enum fl_status rc = fl_file_read(path, 16u << 20, &buf, &len, err);
    if (rc != FL_OK)
        return rc;
    p = fl_realloc(buf, len + 1);
    if (!p) {
        fl_free(buf);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    }
    p[len] = 0;
    line = strtok_r(p, "\n", &save);
    if (!line || sscanf(line, "%d %d", &folds, &per) != 2 || folds < 2 || folds > 100 || per < 1 ||
        per > 100000) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, "%s: first line is not 'FOLDS PAIRS'", path);
        goto out;
    }
    pairs = fl_calloc((size_t)folds * 2 * (size_t)per, sizeof(*pairs));
    if (!pairs) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int f = 0; f < folds; f++) {
        for (int k = 0; k < 2 * per; k++) {
            char n1[256], n2[256];
            int i1, i2, a, b;
            bool same = k < per;
            line = strtok_r(NULL, "\n", &save);
            line_no++;
            if (!line) {
                rc = fl_err_set(err, FL_ERR_INVALID_ARG, "%s: ends at line %d", path, line_no);
                goto out;
            }
            if (same ? sscanf(line, "%255s %d %d", n1, &i1, &i2) != 3
                     : sscanf(line, "%255s %d %255s %d", n1, &i1, n2, &i2) != 4) {
                rc = fl_err_set(err, FL_ERR_INVALID_ARG, "%s:%d: malformed pair", path, line_no);
                goto out;
            }
            a = fl__lfw_set_find(s, n1, i1);
            b = fl__lfw_set_find(s, same ? n1 : n2, i2);
            if (a < 0 || b < 0) {
                rc = fl_err_set(err, FL_ERR_NOT_FOUND, "%s:%d: image not in %s", path, line_no,
                                s->dir);
                goto out;
            }
            if (per_block > 0 && (same ? k : k - per) >= per_block)
                continue;
            pairs[n].a = a;
            pairs[n].b = b;
            pairs[n].fold = f;
            pairs[n].same = same;
            n++;
        }
    }
    *out = pairs;
    *n_out = n;
    *n_folds = folds;
    pairs = NULL;
out:
    fl_free(pairs);
    fl_free(p);
    return rc;
}

/* Score (higher = same) of every pair for variant v; NAN when a face is missing. */
static void model_scores(const struct fl__lfw_set *s, const struct pair *pairs, int n,
                         enum fl__eval_var v, double *out)
{
    enum fl_face_model m = fl__eval_var_model(v);
    int dim = fl__eval_var_dim(v);
    for (int k = 0; k < n; k++) {
        const struct pair *p = &pairs[k];
        if (!fl__lfw_set_has(s, p->a, v) || !fl__lfw_set_has(s, p->b, v)) {
            out[k] = NAN;
            continue;
        }
        out[k] = -(double)fl_face_distance(m, s->emb[v] + (size_t)p->a * (size_t)dim,
                                           s->emb[v] + (size_t)p->b * (size_t)dim);
    }
}

struct scored {
    double s;
    bool same;
};

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const struct scored *)a)->s, y = ((const struct scored *)b)->s;
    return x < y ? -1 : x > y;
}

/* The threshold maximising accuracy (accept s >= t) over the pairs with
 * use[k] and a score; tmp has room for n. */
static double best_threshold(const double *sc, const struct pair *pairs, const bool *use, int n,
                             struct scored *tmp)
{
    int m = 0, pos_above, neg_below = 0, best_k = 0, best_correct = -1;
    for (int k = 0; k < n; k++)
        if (use[k] && !isnan(sc[k])) {
            tmp[m].s = sc[k];
            tmp[m].same = pairs[k].same;
            m++;
        }
    if (m == 0)
        return 0;
    qsort(tmp, (size_t)m, sizeof(*tmp), cmp_scored);
    pos_above = 0;
    for (int k = 0; k < m; k++)
        pos_above += tmp[k].same;
    /* threshold between tmp[k-1] and tmp[k]: accept tmp[k..m-1] */
    for (int k = 0; k <= m; k++) {
        if (k > 0) {
            neg_below += !tmp[k - 1].same;
            pos_above -= tmp[k - 1].same;
        }
        if ((k == 0 || k == m || tmp[k].s > tmp[k - 1].s) && neg_below + pos_above > best_correct) {
            best_correct = neg_below + pos_above;
            best_k = k;
        }
    }
    if (best_k == 0)
        return tmp[0].s - 1e-6;
    if (best_k == m)
        return tmp[m - 1].s + 1e-6;
    return 0.5 * (tmp[best_k - 1].s + tmp[best_k].s);
}

/* Mean and sd of scores over pairs with use[k] and a score. */
static void stats(const double *sc, const bool *use, int n, double *mean, double *sd)
{
    double s1 = 0, s2 = 0;
    int m = 0;
    for (int k = 0; k < n; k++)
        if (use[k] && !isnan(sc[k])) {
            s1 += sc[k];
            s2 += sc[k] * sc[k];
            m++;
        }
    *mean = m ? s1 / m : 0;
    *sd = m > 1 ? sqrt(fmax(s2 / m - *mean * *mean, 1e-30)) : 1;
}

static int cmp_double_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static double tar_at_far(const double *sc, const struct pair *pairs, int n, double far)
{
    double *neg = fl_malloc(sizeof(double) * (size_t)n), t;
    int n_neg = 0, n_pos = 0, acc = 0, allowed;
    if (!neg)
        return NAN;
    for (int k = 0; k < n; k++) {
        if (pairs[k].same)
            n_pos++;
        else
            neg[n_neg++] = isnan(sc[k]) ? -INFINITY : sc[k];
    }
    qsort(neg, (size_t)n_neg, sizeof(double), cmp_double_desc);
    allowed = (int)floor(far * n_neg);
    /* accept s > t: at most `allowed` negatives lie above t */
    t = allowed < n_neg ? neg[allowed] : -INFINITY;
    for (int k = 0; k < n; k++)
        acc += pairs[k].same && !isnan(sc[k]) && sc[k] > t;
    fl_free(neg);
    return n_pos ? (double)acc / n_pos : NAN;
}

/* zfusion scores into out: the mean of both scores, each z-normalised with
 * the mean and standard deviation of the pairs with use[k]; NAN where either
 * score is missing. */
static void zfuse(double *const sc[2], const bool *use, int n, double *out)
{
    double mu[2], sd[2];
    for (int i = 0; i < 2; i++)
        stats(sc[i], use, n, &mu[i], &sd[i]);
    for (int k = 0; k < n; k++)
        out[k] = isnan(sc[0][k]) || isnan(sc[1][k])
                     ? NAN
                     : 0.5 * ((sc[0][k] - mu[0]) / sd[0] + (sc[1][k] - mu[1]) / sd[1]);
}

/* One result row: the 10-fold protocol on one scorer's scores. */
static enum fl_status run_row(const struct fl__lfw_set *s, const struct pair *pairs, int n,
                              int n_folds, enum fl_eval_scorer scorer, bool flip,
                              struct fl_eval_lfw_row *row, struct fl_err *err)
{
    double *sc[2] = {NULL, NULL}, *zsc = NULL, acc[100], acc_f[100], thr_sum = 0;
    bool *use = NULL;
    struct scored *tmp = NULL;
    enum fl_status rc = FL_OK;
    enum fl__eval_var vd = flip ? FL__VAR_DLIB_FLIP : FL__VAR_DLIB;
    enum fl__eval_var vm = flip ? FL__VAR_MFN_FLIP : FL__VAR_MFN;
    int n_sc = scorer == FL_EVAL_ZFUSION ? 2 : 1;

    memset(row, 0, sizeof(*row));
    row->scorer = scorer;
    row->flip = flip;
    for (int i = 0; i < 2; i++)
        sc[i] = fl_malloc(sizeof(double) * (size_t)n);
    zsc = fl_malloc(sizeof(double) * (size_t)n);
    use = fl_malloc((size_t)n);
    tmp = fl_malloc(sizeof(*tmp) * (size_t)n);
    if (!sc[0] || !sc[1] || !zsc || !use || !tmp) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (scorer == FL_EVAL_DLIB || scorer == FL_EVAL_ZFUSION)
        model_scores(s, pairs, n, vd, sc[0]);
    if (scorer == FL_EVAL_MFN)
        model_scores(s, pairs, n, vm, sc[0]);
    if (scorer == FL_EVAL_ZFUSION)
        model_scores(s, pairs, n, vm, sc[1]);
    if (scorer == FL_EVAL_FUSED)
        model_scores(s, pairs, n, FL__VAR_FUSED, sc[0]);

    for (int f = 0; f < n_folds; f++) {
        int correct = 0, total = 0, correct_f = 0, total_f = 0;
        double t;
        const double *score = sc[0];
        for (int k = 0; k < n; k++)
            use[k] = pairs[k].fold != f;
        if (n_sc == 2) {
            zfuse(sc, use, n, zsc);
            score = zsc;
        }
        t = best_threshold(score, pairs, use, n, tmp);
        thr_sum += t;
        for (int k = 0; k < n; k++) {
            bool ok;
            if (pairs[k].fold != f)
                continue;
            total++;
            if (isnan(score[k]))
                continue;
            ok = (score[k] >= t) == pairs[k].same;
            correct += ok;
            correct_f += ok;
            total_f++;
        }
        acc[f] = total ? (double)correct / total : 0;
        acc_f[f] = total_f ? (double)correct_f / total_f : 0;
    }
    {
        double m = 0, m_f = 0, v = 0;
        for (int f = 0; f < n_folds; f++) {
            m += acc[f];
            m_f += acc_f[f];
        }
        m /= n_folds;
        m_f /= n_folds;
        for (int f = 0; f < n_folds; f++)
            v += (acc[f] - m) * (acc[f] - m);
        row->acc_mean = m;
        row->acc_std = sqrt(v / n_folds);
        row->acc_found_mean = m_f;
        /* report thresholds as distances (the zfusion one as a z-score) */
        row->threshold_mean = scorer == FL_EVAL_ZFUSION ? thr_sum / n_folds : -thr_sum / n_folds;
    }
    if (n_sc == 2) {
        for (int k = 0; k < n; k++)
            use[k] = true;
        zfuse(sc, use, n, zsc);
        row->tar_at_far_1e3 = tar_at_far(zsc, pairs, n, 1e-3);
    } else {
        row->tar_at_far_1e3 = tar_at_far(sc[0], pairs, n, 1e-3);
    }
out:
    fl_free(sc[0]);
    fl_free(sc[1]);
    fl_free(zsc);
    fl_free(use);
    fl_free(tmp);
    return rc;
}

enum fl_status fl_eval_lfw(const struct fl_eval_lfw_opts *opts, struct fl_eval_lfw_result *out,
                           struct fl_err *err)
{
    struct fl__lfw_set s;
    struct pair *pairs = NULL;
    uint8_t *need = NULL;
    int n = 0, n_folds = 0, n_embedded = 0;
    unsigned scorers = opts->scorers ? opts->scorers : 1u << FL_EVAL_FUSED, var_mask = 0;
    uint64_t t0 = fl_time_mono_ns();
    struct fl_eval_lfw_result r;
    enum fl_status rc;

    memset(&r, 0, sizeof(r));
    rc = fl__lfw_set_open(opts->images_dir, opts->centre_crop, (int)opts->dlib_align, &s, err);
    if (rc != FL_OK)
        return rc;
    rc = parse_pairs(opts->pairs_path, &s, opts->pairs_per_block, &pairs, &n, &n_folds, err);
    if (rc != FL_OK)
        goto out;
    need = fl_calloc((size_t)s.n_images, 1);
    if (!need) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k < n; k++)
        need[pairs[k].a] = need[pairs[k].b] = 1;
    for (int v = 0; v < FL__VAR_CACHED_; v++) {
        bool is_flip = v == FL__VAR_DLIB_FLIP || v == FL__VAR_MFN_FLIP;
        bool dlib = fl__eval_var_model((enum fl__eval_var)v) == FL_FACE_MODEL_DLIB;
        bool wanted = (scorers & (1u << FL_EVAL_ZFUSION)) ||
                      (scorers & (1u << (dlib ? FL_EVAL_DLIB : FL_EVAL_MFN)));
        if (wanted && (is_flip ? opts->flip : !(opts->flip && opts->no_plain)))
            var_mask |= 1u << v;
    }
    if (scorers & (1u << FL_EVAL_FUSED))
        var_mask |= 1u << FL__VAR_FUSED;
    if (opts->cache_path) {
        rc = fl__lfw_set_load(&s, opts->cache_path, err);
        if (rc != FL_OK)
            goto out;
    }
    rc = fl__lfw_set_embed(&s, need, var_mask, opts->models_dir, opts->threads, &opts->progress,
                           &n_embedded, err);
    if (rc != FL_OK)
        goto out;
    if (opts->cache_path && n_embedded > 0) {
        rc = fl__lfw_set_save(&s, opts->cache_path, err);
        if (rc != FL_OK)
            goto out;
    }

    r.n_folds = n_folds;
    r.n_pairs = n;
    r.n_embedded = n_embedded;
    for (int i = 0; i < s.n_images; i++) {
        if (!need[i])
            continue;
        r.n_images++;
        r.n_no_face += (s.have[i] & FL__HAVE_NOFACE) != 0;
        r.n_centre_crop += (s.have[i] & FL__HAVE_CENTRE) != 0;
    }
    for (int k = 0; k < n; k++) {
        uint8_t ha = s.have[pairs[k].a], hb = s.have[pairs[k].b];
        bool miss_a = (ha & FL__HAVE_NOFACE) && !(ha & FL__HAVE_CENTRE);
        bool miss_b = (hb & FL__HAVE_NOFACE) && !(hb & FL__HAVE_CENTRE);
        r.n_pairs_missing += miss_a || miss_b;
    }
    for (int flip = 0; flip <= 1; flip++) {
        if (flip ? !opts->flip : (opts->flip && opts->no_plain))
            continue;
        for (int sc = 0; sc < FL_EVAL_SCORER_COUNT_; sc++) {
            /* the fused model's one row: with the last pass (the flip rows when there are) */
            bool is_fused = sc == FL_EVAL_FUSED;
            if (!(scorers & (1u << sc)) || (is_fused && flip != (int)opts->flip))
                continue;
            FL_ASSERT(r.n_rows < FL_EVAL_LFW_MAX_ROWS);
            rc = run_row(&s, pairs, n, n_folds, (enum fl_eval_scorer)sc, flip != 0 || is_fused,
                         &r.rows[r.n_rows], err);
            if (rc != FL_OK)
                goto out;
            r.n_rows++;
        }
    }
    r.seconds = (double)(fl_time_mono_ns() - t0) / 1e9;
    *out = r;
out:
    fl_free(need);
    fl_free(pairs);
    fl__lfw_set_free(&s);
    return rc;
}
