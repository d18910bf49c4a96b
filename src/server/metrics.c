/*
 * metrics.c: the counters behind GET /metrics, in Prometheus text format
 * (exposition format 0.0.4).
 *
 * What is counted: requests by operation and outcome (status code and AWS
 * error name), a latency histogram per operation, faces indexed and deleted,
 * and, at render time, the worker queue depth, busy workers and open
 * connections.
 *
 * Cardinality: the operation label comes from a fixed table of known targets
 * (Rekognition face operations and FaceLink extensions); anything else a
 * client sends is counted as op="other", so a client cannot grow the metric
 * set. The outcome is an enum fl_status, also a closed set.
 *
 * Threading: every counter is a relaxed C11 atomic; observe() is called by
 * workers concurrently and render() by any thread. A scrape may see a request
 * counted in _count but not yet in a bucket; Prometheus tolerates such skew.
 * Per-thread counters merged at scrape time were rejected: the request rate
 * is bounded by inference (milliseconds per request), far from where a shared
 * atomic add would matter.
 */
#include "server/server_int.h"

#include <string.h>

/* clang-format off */
static const char *const known_ops[] = {
    "CreateCollection", "DescribeCollection", "ListCollections", "DeleteCollection",
    "IndexFaces", "ListFaces", "DeleteFaces", "SearchFaces", "SearchFacesByImage",
    "CreateUser", "DeleteUser", "ListUsers", "AssociateFaces", "DisassociateFaces",
    "SearchUsers", "SearchUsersByImage", "DetectFaces", "CompareFaces",
    "TagResource", "UntagResource", "ListTagsForResource",
    "StartFaceDetection", "GetFaceDetection", "StartFaceSearch", "GetFaceSearch",
    "CreateFaceLivenessSession", "GetFaceLivenessSessionResults",
    /* FaceLinkService extensions (DESIGN.md section 4) */
    "GetFaceEmbeddings", "SearchFacesByEmbedding", "SearchAllFacesByImage",
    "ExportCollection", "ImportFaces", "ReindexCollection", "DescribeJob", "ClusterFaces",
};
/* clang-format on */
#define N_OPS ((int)FL_ARRAY_LEN(known_ops) + 1) /* + "other" */

/* Upper bounds of the latency buckets, seconds (+Inf implied). */
static const double bucket_le[FL__METRICS_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                        0.5,   1,    2.5,   5,    10,  30};

struct op_metrics {
    atomic_long by_status[FL_STATUS_COUNT_];
    atomic_long bucket[FL__METRICS_N_BUCKETS]; /* non-cumulative counts */
    atomic_long count;
    atomic_llong sum_us; /* microseconds */
};

struct fl__metrics {
    struct op_metrics op[N_OPS];
    atomic_long faces_indexed;
    atomic_long faces_deleted;
    double t_start; /* wall clock at creation */
};

struct fl__metrics *fl__metrics_new(struct fl_err *err)
{
    struct fl__metrics *m = fl_calloc(1, sizeof(*m));
    if (!m) {
        fl_err_set(err, FL_ERR_NOMEM, "metrics: out of memory");
        return NULL;
    }
    /* calloc zeroes the atomics: valid for lock-free integer atomics, which
     * these are on every platform we build for. */
    m->t_start = fl_time_now();
    return m;
}

void fl__metrics_free(struct fl__metrics *m)
{
    fl_free(m);
}

int fl__metrics_op_index(const char *target)
{
    const char *op;
    if (!target)
        return N_OPS - 1;
    if (strncmp(target, "RekognitionService.", 19) == 0)
        op = target + 19;
    else if (strncmp(target, "FaceLinkService.", 16) == 0)
        op = target + 16;
    else
        return N_OPS - 1;
    for (int i = 0; i < N_OPS - 1; i++)
        if (strcmp(op, known_ops[i]) == 0)
            return i;
    return N_OPS - 1;
}

void fl__metrics_observe(struct fl__metrics *m, int op, enum fl_status st, double seconds)
{
    if (op < 0 || op >= N_OPS)
        op = N_OPS - 1;
    if ((unsigned)st >= FL_STATUS_COUNT_)
        st = FL_ERR_INTERNAL;
    struct op_metrics *o = &m->op[op];
    atomic_fetch_add_explicit(&o->by_status[st], 1, memory_order_relaxed);
    for (int b = 0; b < FL__METRICS_N_BUCKETS; b++) {
        if (seconds <= bucket_le[b]) {
            atomic_fetch_add_explicit(&o->bucket[b], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&o->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&o->sum_us, (long long)(seconds * 1e6), memory_order_relaxed);
}

void fl__metrics_faces(struct fl__metrics *m, long added, long deleted)
{
    atomic_fetch_add_explicit(&m->faces_indexed, added, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->faces_deleted, deleted, memory_order_relaxed);
}

static const char *op_name(int i)
{
    return i < N_OPS - 1 ? known_ops[i] : "other";
}

enum fl_status fl__metrics_render(struct fl__metrics *m, int queue_depth, int busy, int n_workers,
                                  long connections, struct fl_buf *b, struct fl_err *err)
{
    enum fl_status st = FL_OK;
#define P(...)                                                                                     \
    do {                                                                                           \
        st = fl_buf_printf(b, err, __VA_ARGS__);                                                   \
        if (st != FL_OK)                                                                           \
            return st;                                                                             \
    } while (0)

    P("# HELP facelink_requests_total Requests answered, by operation and outcome.\n"
      "# TYPE facelink_requests_total counter\n");
    for (int i = 0; i < N_OPS; i++) {
        for (int s = 0; s < FL_STATUS_COUNT_; s++) {
            long v = atomic_load_explicit(&m->op[i].by_status[s], memory_order_relaxed);
            if (v == 0)
                continue;
            const char *ex = s == FL_OK ? "" : fl_status_exception((enum fl_status)s);
            P("facelink_requests_total{op=\"%s\",code=\"%d\",error=\"%s\"} %ld\n", op_name(i),
              fl_status_http((enum fl_status)s), ex, v);
        }
    }
    P("# HELP facelink_request_duration_seconds Time from the request line to the response being "
      "ready.\n"
      "# TYPE facelink_request_duration_seconds histogram\n");
    for (int i = 0; i < N_OPS; i++) {
        long count = atomic_load_explicit(&m->op[i].count, memory_order_relaxed);
        if (count == 0)
            continue;
        long cum = 0;
        for (int k = 0; k < FL__METRICS_N_BUCKETS; k++) {
            cum += atomic_load_explicit(&m->op[i].bucket[k], memory_order_relaxed);
            P("facelink_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %ld\n", op_name(i),
              bucket_le[k], cum);
        }
        P("facelink_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %ld\n", op_name(i),
          count);
        P("facelink_request_duration_seconds_sum{op=\"%s\"} %.6f\n", op_name(i),
          (double)atomic_load_explicit(&m->op[i].sum_us, memory_order_relaxed) / 1e6);
        P("facelink_request_duration_seconds_count{op=\"%s\"} %ld\n", op_name(i), count);
    }
    P("# HELP facelink_faces_indexed_total Faces added by IndexFaces since start.\n"
      "# TYPE facelink_faces_indexed_total counter\n"
      "facelink_faces_indexed_total %ld\n",
      atomic_load_explicit(&m->faces_indexed, memory_order_relaxed));
    P("# HELP facelink_faces_deleted_total Faces removed by DeleteFaces since start.\n"
      "# TYPE facelink_faces_deleted_total counter\n"
      "facelink_faces_deleted_total %ld\n",
      atomic_load_explicit(&m->faces_deleted, memory_order_relaxed));
    P("# HELP facelink_queue_depth Requests waiting for a worker.\n"
      "# TYPE facelink_queue_depth gauge\n"
      "facelink_queue_depth %d\n",
      queue_depth);
    P("# HELP facelink_workers_busy Workers running a request.\n"
      "# TYPE facelink_workers_busy gauge\n"
      "facelink_workers_busy %d\n",
      busy);
    P("# HELP facelink_workers Worker threads.\n"
      "# TYPE facelink_workers gauge\n"
      "facelink_workers %d\n",
      n_workers);
    P("# HELP facelink_connections Open HTTP connections.\n"
      "# TYPE facelink_connections gauge\n"
      "facelink_connections %ld\n",
      connections);
    P("# HELP facelink_start_time_seconds Start time of the server, epoch seconds.\n"
      "# TYPE facelink_start_time_seconds gauge\n"
      "facelink_start_time_seconds %.3f\n",
      m->t_start);
#undef P
    return st;
}
