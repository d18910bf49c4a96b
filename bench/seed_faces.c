/*
 * seed_faces.c: fill a data directory with one collection of N faces, fast,
 * for the SearchFaces HTTP benchmark (scripts/bench_http). Not a test.
 *
 * IndexFaces would cost tens of milliseconds of inference per face; a search
 * benchmark only needs stored faces with realistic vectors. So the faces are
 * inserted through the api layer's commit path (fl__api_faces_commit under
 * fl__api_with_ctx: store rows + index, exactly what IndexFaces commits),
 * in batches of 1000, with the dimension of the collection's model (the
 * service default: 320 for the fused model): clusters of 8 perturbed copies
 * (N(0, 0.03 s) per component) of random centres (components N(0, 0.09 s)),
 * s = sqrt(128 / dim) so |v| ~ 1 whatever the dimension, L2-normalised for
 * cosine models. Each query has a few close neighbours, like a real gallery.
 *
 *   build/bench/seed_faces DATA_DIR N IDS_FILE [COLLECTION]
 *
 * Writes the FaceIds, one a line, to IDS_FILE (the wrk script picks its
 * queries from them). The collection (default "bench") must not exist.
 */
#include "api/api.h"
#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM FL_FACE_MAX_DIM
#define BATCH 1000
#define CLUSTER 8

struct seed {
    const char *coll;
    size_t n;
    struct fl_rng rng;
    char (*ids)[FL_UUID_STR_LEN + 1];
};

/* Scale v[0..n) to unit length. */
static void unit(float *v, int n)
{
    double n2 = 0;
    for (int k = 0; k < n; k++)
        n2 += (double)v[k] * v[k];
    for (int k = 0; k < n && n2 > 0; k++)
        v[k] = (float)(v[k] / sqrt(n2));
}

static enum fl_status seed_fn(struct fl__api_ctx *ctx, void *ud, struct fl_err *err)
{
    struct seed *s = ud;
    struct fl__api_coll *c = NULL;
    struct fl_store_face *f = fl_calloc(BATCH, sizeof(*f));
    float *v = fl_malloc((size_t)BATCH * MAX_DIM * sizeof(float));
    float centre[MAX_DIM];
    int dim = 0;
    double sc = 1;
    enum fl_status rc = fl__api_coll_require(ctx->svc, s->coll, &c, err);
    if (rc == FL_OK && (!f || !v))
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    if (rc == FL_OK) {
        dim = (int)c->model->dim;
        sc = sqrt(128.0 / dim);
    }
    for (size_t done = 0; rc == FL_OK && done < s->n; done += BATCH) {
        size_t m = s->n - done < BATCH ? s->n - done : BATCH;
        for (size_t i = 0; i < m; i++) {
            if ((done + i) % CLUSTER == 0)
                for (int k = 0; k < dim; k++)
                    centre[k] = (float)(0.09 * sc * bench_gauss(&s->rng));
            fl_uuid_v4(s->ids[done + i], NULL);
            memcpy(f[i].face_id, s->ids[done + i], sizeof(f[i].face_id));
            fl_uuid_v4(f[i].image_id, NULL);
            f[i].bbox.left = f[i].bbox.top = 0.25f;
            f[i].bbox.width = f[i].bbox.height = 0.5f;
            f[i].confidence = 99.9f;
            f[i].model_version = c->model->face_model_version;
            f[i].embedding = v + i * (size_t)dim;
            f[i].dim = (uint32_t)dim;
            for (int k = 0; k < dim; k++)
                v[i * (size_t)dim + k] = centre[k] + (float)(0.03 * sc * bench_gauss(&s->rng));
            if (c->model->metric == FL_INDEX_COSINE)
                unit(v + i * (size_t)dim, dim);
        }
        rc = fl__api_faces_commit(ctx, c, f, m, err);
    }
    fl_free(f);
    fl_free(v);
    return rc;
}

int main(int argc, char **argv)
{
    struct fl_service_config cfg;
    struct fl_service *svc = NULL;
    struct fl_err err = {0};
    struct seed s = {0};
    char body[256], *out = NULL;
    size_t n_out;
    FILE *fp = NULL;
    uint64_t t0;
    int ret = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: %s DATA_DIR N IDS_FILE [COLLECTION]\n", argv[0]);
        return 2;
    }
    fl_core_init();
    fl_log_setup(FL_LOG_WARN, false);
    s.coll = argc > 4 ? argv[4] : "bench";
    s.n = (size_t)strtoull(argv[2], NULL, 10);
    fl_rng_seed(&s.rng, 20261128);
    s.ids = s.n ? fl_malloc(s.n * sizeof(*s.ids)) : NULL;
    if (!s.ids)
        return 2;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = argv[1];
    svc = fl_service_open(&cfg, &err);
    if (!svc) {
        fprintf(stderr, "open %s: %s\n", argv[1], err.msg);
        goto out;
    }
    snprintf(body, sizeof(body), "{\"CollectionId\":\"%s\"}", s.coll);
    if (fl_service_call(svc, "RekognitionService.CreateCollection", body, strlen(body), &out,
                        &n_out, &err) != FL_OK) {
        fprintf(stderr, "CreateCollection: %s\n", err.msg);
        goto out;
    }
    t0 = fl_time_mono_ns();
    if (fl__api_with_ctx(svc, seed_fn, &s, &err) != FL_OK) {
        fprintf(stderr, "seed: %s\n", err.msg);
        goto out;
    }
    fprintf(stderr, "seeded %zu faces into %s in %.1f s\n", s.n, s.coll,
            (double)(fl_time_mono_ns() - t0) / 1e9);
    fp = fopen(argv[3], "w");
    if (!fp)
        goto out;
    for (size_t i = 0; i < s.n; i++)
        fprintf(fp, "%s\n", s.ids[i]);
    ret = fclose(fp) == 0 ? 0 : 1;
out:
    fl_free_string(out);
    if (svc)
        fl_service_close(svc);
    fl_free(s.ids);
    return ret;
}
