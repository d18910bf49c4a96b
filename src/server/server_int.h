/*
 * server_int.h: internals of the server module shared between its files and
 * its unit tests: the worker pool, SigV4 verification and the metrics.
 */
#ifndef FL_SERVER_INT_H
#define FL_SERVER_INT_H

#include "core/core.h"
#include "facelink_server.h"

#include <stdatomic.h>

/* ============================== Worker pool ============================== */

/* A fixed set of threads fed by a bounded FIFO. Submitting never blocks: a
 * full queue is reported at once so the server can answer ThrottlingException.
 * Threading: submit and depth are safe from any thread; free from one thread
 * that is not a worker. */
struct fl__pool;
typedef void (*fl__pool_job_fn)(void *arg);

/* NULL with err set on failure. n_threads >= 1, queue_max >= 1. */
struct fl__pool *fl__pool_new(int n_threads, int queue_max, struct fl_err *err);
/* Queue fn(arg). false (and nothing queued) when the queue is full or the
 * pool is stopping. */
bool fl__pool_submit(struct fl__pool *p, fl__pool_job_fn fn, void *arg);
/* Jobs waiting (not yet taken by a worker). */
int fl__pool_depth(struct fl__pool *p);
/* Jobs running right now. */
int fl__pool_busy(struct fl__pool *p);
/* Refuse new jobs, run every queued one, join the workers. The pool stays
 * valid (submit returns false). Idempotent; NULL is a no-op. */
void fl__pool_shutdown(struct fl__pool *p);
/* Shut down (if not yet) and free. NULL is a no-op. */
void fl__pool_free(struct fl__pool *p);

/* ================================ SigV4 ================================ */

/* A name/value pair (header or decoded query parameter); borrowed. */
struct fl__kv {
    const char *name;
    const char *value;
};

/* The parts of an HTTP request SigV4 signs; everything borrowed. */
struct fl__sigv4_req {
    const char *method;
    const char *raw_path;         /* as on the request line, before '?' */
    const char *raw_query;        /* after '?', NULL or "" if none */
    const struct fl__kv *headers; /* in arrival order, duplicates kept */
    size_t n_headers;
    const void *body;
    size_t body_len;
};

/* Key lookup: the verifier asks for the secret of an access key id. */
struct fl__keyring {
    const struct fl_server_key *keys;
    size_t n_keys;
};

/* What a verified request authenticated as. */
struct fl__sigv4_auth {
    char access_key_id[129];
    bool read_only;
};

/* Verify r against keys at wall-clock time now (epoch seconds) with max_skew_s
 * of tolerated clock difference. FL_OK fills *out. Errors carry the AWS text:
 * FL_ERR_AUTH_MISSING, FL_ERR_AUTH_INCOMPLETE, FL_ERR_AUTH_SIGNATURE (also for
 * an expired or future-dated request), FL_ERR_AUTH_UNKNOWN_KEY, FL_ERR_NOMEM.
 * Thread-safe (no shared state). */
enum fl_status fl__sigv4_verify(const struct fl__sigv4_req *r, const struct fl__keyring *keys,
                                double now, int max_skew_s, struct fl__sigv4_auth *out,
                                struct fl_err *err);

/* Building blocks, exposed for the published test vectors. */

/* Canonical request for r with the given signed-header list ("host;x-amz-date")
 * and payload hash (lowercase hex). skip_signature drops X-Amz-Signature from
 * the query (presigned form). Caller fl_free()s *out. */
enum fl_status fl__sigv4_canonical_request(const struct fl__sigv4_req *r,
                                           const char *signed_headers, const char *payload_hash_hex,
                                           bool skip_signature, char **out, struct fl_err *err);
/* String to sign from the ISO-8601 basic date, the scope
 * ("20150830/us-east-1/service/aws4_request") and the canonical request.
 * Caller fl_free()s *out. */
enum fl_status fl__sigv4_string_to_sign(const char *amz_date, const char *scope,
                                        const char *canonical_request, char **out,
                                        struct fl_err *err);
/* Hex signature of sts with the key derived from secret, date (yyyymmdd),
 * region and service. out gets 64 hex chars and a NUL. */
void fl__sigv4_signature(const char *secret, const char *date8, const char *region,
                         const char *service, const char *sts, char out[65]);
/* Parse "20150830T123600Z" into epoch seconds; false if malformed. */
bool fl__sigv4_parse_date(const char *s, double *out);
/* Format epoch seconds as "20150830T123600Z" into out[17]. */
void fl__sigv4_format_date(double t, char out[17]);
/* True when op (the part of X-Amz-Target after the '.') is allowed to a
 * read-only key: Describe*, List*, Search*, Detect*, Compare*, Get*. */
bool fl__sigv4_read_only_op(const char *op);

/* ================================ Metrics ================================ */

#define FL__METRICS_N_BUCKETS 12

/* Process counters for /metrics. All fields atomic; any thread may update. */
struct fl__metrics;

struct fl__metrics *fl__metrics_new(struct fl_err *err);
void fl__metrics_free(struct fl__metrics *m);
/* Index of an operation for the counters: a known target's op name, else the
 * "other" slot. target may be NULL. */
int fl__metrics_op_index(const char *target);
/* Count one finished request: op index, status, latency in seconds. */
void fl__metrics_observe(struct fl__metrics *m, int op, enum fl_status st, double seconds);
/* Faces added (IndexFaces) or removed (DeleteFaces). */
void fl__metrics_faces(struct fl__metrics *m, long added, long deleted);
/* Prometheus text exposition into b, with the pool's queue depth and busy
 * workers and the listener's open connections as gauges. */
enum fl_status fl__metrics_render(struct fl__metrics *m, int queue_depth, int busy, int n_workers,
                                  long connections, struct fl_buf *b, struct fl_err *err);

/* ============================ Listen address ============================ */

/* Parse "HOST:PORT" / "[V6]:PORT" ("localhost" means 127.0.0.1) into a
 * sockaddr_storage (out, *out_len) and tell whether it is a loopback address.
 * FL_ERR_INVALID_ARG with a message otherwise. */
struct sockaddr_storage;
enum fl_status fl__server_parse_listen(const char *listen, struct sockaddr_storage *out,
                                       unsigned *out_len, bool *out_loopback, struct fl_err *err);

/* Deep copy of a configuration (dst is overwritten, not freed first). On
 * failure dst holds nothing. */
enum fl_status fl__server_config_copy(struct fl_server_config *dst,
                                      const struct fl_server_config *src, struct fl_err *err);

#endif /* FL_SERVER_INT_H */
