/*
 * bench_api.c: latency of whole operations through fl_service_call() (JSON
 * parse, validation, lock, store reads, index search, JSON out). Not a test.
 *
 * Seeds one collection with N random 128-d faces (batches of 1000 through
 * fl__api_faces_commit, i.e. store insert + index add, as IndexFaces will),
 * then times Q calls each of SearchFaces (threshold 0, MaxFaces 10),
 * ListFaces (MaxResults 1000), DescribeCollection and a CreateUser/DeleteUser
 * pair, single-threaded, and prints the median per call.
 *
 * Build and run (from the repository root):
 *   make -j2 build/libfacelink.a
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc \
 *      $(pkg-config --cflags jansson) bench/bench_api.c build/libfacelink.a \
 *      $(pkg-config --libs jansson sqlite3 libcrypto) -lm -lpthread -o build/bench_api
 *   build/bench_api [N] [Q]        (data in a fresh /tmp directory, removed after)
 */
#include "bench_util.h"
#include "api/api.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 128
#define BATCH 1000

struct seed {
    size_t n;
    struct fl_rng rng;
    char (*ids)[FL_UUID_STR_LEN + 1];
};

static enum fl_status seed_fn(struct fl__api_ctx *ctx, void *ud, struct fl_err *err)
{
    struct seed *s = ud;
    struct fl__api_coll *c;
    struct fl_store_face *f = fl_calloc(BATCH, sizeof(*f));
    float *v = fl_malloc((size_t)BATCH * DIM * sizeof(float));
    enum fl_status rc = fl__api_coll_require(ctx->svc, "bench", &c, err);
    for (size_t done = 0; rc == FL_OK && done < s->n; done += BATCH) {
        size_t m = s->n - done < BATCH ? s->n - done : BATCH;
        for (size_t i = 0; i < m; i++) {
            fl_uuid_v4(s->ids[done + i], NULL);
            memcpy(f[i].face_id, s->ids[done + i], sizeof(f[i].face_id));
            memcpy(f[i].image_id, "11111111-2222-5333-8444-555555555555", 37);
            f[i].bbox.width = f[i].bbox.height = 0.5f;
            f[i].confidence = 99.0f;
            f[i].model_version = c->model->face_model_version;
            f[i].embedding = v + i * DIM;
            f[i].dim = DIM;
            for (int k = 0; k < DIM; k++)
                v[i * DIM + k] = (float)(fl_rng_double(&s->rng) - 0.5);
        }
        rc = fl__api_faces_commit(ctx, c, f, m, err);
    }
    fl_free(f);
    fl_free(v);
    return rc;
}

static double median_ms(uint64_t *t, int n)
{
    qsort(t, (size_t)n, sizeof(*t), cmp_u64);
    return (double)t[n / 2] / 1e6;
}

static uint64_t timed(struct fl_service *svc, const char *op, const char *body)
{
    char target[96], *out = NULL;
    size_t n;
    struct fl_err err;
    uint64_t t0;
    snprintf(target, sizeof(target), "RekognitionService.%s", op);
    t0 = fl_time_mono_ns();
    if (fl_service_call(svc, target, body, strlen(body), &out, &n, &err) != FL_OK)
        fl_log(FL_LOG_ERROR, "%s: %s", op, err.msg);
    t0 = fl_time_mono_ns() - t0;
    fl_free_string(out);
    return t0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 20000;
    int q = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 200;
    char dir[] = "/tmp/fl_bench_api_XXXXXX", body[512];
    struct fl_service_config cfg;
    struct fl_service *svc;
    struct fl_err err;
    struct seed s;
    uint64_t *t, t0;
    fl_core_init();
    fl_log_setup(FL_LOG_WARN, false);
    if (n == 0 || q <= 0 || !mkdtemp(dir))
        return 1;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = dir;
    svc = fl_service_open(&cfg, &err);
    if (!svc)
        return 1;
    timed(svc, "CreateCollection", "{\"CollectionId\":\"bench\"}");
    s.n = n;
    fl_rng_seed(&s.rng, 1);
    s.ids = fl_malloc(n * sizeof(*s.ids));
    t = fl_malloc((size_t)q * sizeof(*t));
    t0 = fl_time_mono_ns();
    if (fl__api_with_ctx(svc, seed_fn, &s, &err) != FL_OK)
        return 1;
    printf("seed %zu faces (store + index, batches of %d): %.1f ms (%.1f us/face)\n", n, BATCH,
           (double)(fl_time_mono_ns() - t0) / 1e6, (double)(fl_time_mono_ns() - t0) / 1e3 / n);
    for (int i = 0; i < q; i++) {
        snprintf(body, sizeof(body),
                 "{\"CollectionId\":\"bench\",\"FaceId\":\"%s\",\"FaceMatchThreshold\":0,"
                 "\"MaxFaces\":10}",
                 s.ids[(size_t)i * 7919 % n]);
        t[i] = timed(svc, "SearchFaces", body);
    }
    printf("SearchFaces (N=%zu, top 10):        %.3f ms median\n", n, median_ms(t, q));
    for (int i = 0; i < q; i++)
        t[i] = timed(svc, "ListFaces", "{\"CollectionId\":\"bench\",\"MaxResults\":1000}");
    printf("ListFaces (1000 faces per page):    %.3f ms median\n", median_ms(t, q));
    for (int i = 0; i < q; i++)
        t[i] = timed(svc, "DescribeCollection", "{\"CollectionId\":\"bench\"}");
    printf("DescribeCollection:                 %.3f ms median\n", median_ms(t, q));
    for (int i = 0; i < q; i++) {
        t[i] = timed(svc, "CreateUser", "{\"CollectionId\":\"bench\",\"UserId\":\"u\"}");
        t[i] += timed(svc, "DeleteUser", "{\"CollectionId\":\"bench\",\"UserId\":\"u\"}");
    }
    printf("CreateUser + DeleteUser (2 commits): %.3f ms median\n", median_ms(t, q));
    fl_service_close(svc);
    {
        DIR *d = opendir(dir);
        struct dirent *e;
        char p[1024];
        while (d && (e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
                remove(p);
            }
        if (d)
            closedir(d);
        remove(dir);
    }
    fl_free(t);
    fl_free(s.ids);
    return 0;
}
