/*
 * http.c: the HTTP/1.1 front end: libmicrohttpd in, AWS JSON 1.1 out.
 *
 * What: one MHD daemon (internal polling threads on epoll, keep-alive,
 * connection limits, idle timeout) routes
 *     POST /          an operation named by X-Amz-Target (JSON 1.1)
 *     GET  /healthz   {"status":"ok"}
 *     GET  /metrics   Prometheus text
 * and anything else to a JSON 404 or 405. Responses and errors follow
 * Rekognition exactly (spec/REKOGNITION.md 1.1): 200 with Content-Type
 * application/x-amz-json-1.1 and x-amzn-RequestId; errors with the HTTP
 * status of core/err.c and the body
 *     {"__type":"<Name>","Code":"<Name>","Logref":"<uuid>","Message":"..."}
 * botocore takes the exception class from __type and the text from Message.
 *
 * Life of a request (states in struct request):
 *   NEW      the URI-log callback allocates the request and keeps the raw URI
 *            (SigV4 signs the path and query as sent, before MHD unescapes).
 *   BODY     the access handler appends upload chunks to a capped buffer. A
 *            Content-Length over the body limit is answered at once; a
 *            chunked body that grows past it is discarded and answered when
 *            it ends. Either way: ImageTooLargeException (400), the error a
 *            Rekognition client expects for an oversized image.
 *   WORKING  the body is complete: the handler copies the headers, suspends
 *            the connection and queues a job on the worker pool. If the pool's
 *            queue is full the answer is ThrottlingException (500, retried by
 *            every SDK), prepared and sent immediately, never a wait.
 *   DONE     the worker verified SigV4, ran the dispatch function, built the
 *            response bytes and resumed the connection; MHD calls the handler
 *            again and it queues the prepared response.
 * /healthz is answered on the I/O thread (constant); /metrics goes through
 * the pool like an operation. The I/O threads never hash, parse JSON or run
 * an operation (STYLE.md 2.7).
 *
 * Authentication (docs/internals/server.md): with access keys configured and
 * no --no-auth, every POST must carry a valid SigV4 signature, and read-only
 * keys are refused (AccessDeniedException) any operation that is not
 * Describe*, List*, Search*, Detect*, Compare* or Get*. With no keys, the
 * configuration layer only allows a loopback listen address, and requests
 * are accepted signed or not, so `make run` and `aws --endpoint-url` with
 * dummy credentials work out of the box; the start-up log says so.
 *
 * Threading model: MHD's I/O threads run the access handler and the
 * completion callback; worker threads run jobs. A request is touched by one
 * thread at a time: by an I/O thread until it is suspended, by a worker until
 * it calls MHD_resume_connection() (its last access), then by an I/O thread
 * again; MHD's resume mutex orders these hand-overs. The server object is
 * read-only after start except for the metrics (atomics).
 * Alternatives rejected: answering inside the handler (blocks an I/O thread
 * per inference), and MHD's thread-per-connection mode (unbounded threads,
 * no place to say "busy").
 */
#include "server/server_int.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define CT_JSON     "application/x-amz-json-1.1"
#define CT_PROM     "text/plain; version=0.0.4; charset=utf-8"
#define MAX_HEADERS 256

struct fl_server {
    struct fl_server_config cfg; /* owned deep copy */
    struct MHD_Daemon *daemon;
    struct fl__pool *pool;
    struct fl__metrics *metrics;
    struct fl__keyring keyring;
    bool verify;             /* SigV4 required */
    bool collection_metrics; /* per-collection series in /metrics */
    int n_workers;
    uint16_t port;
};

enum phase { PH_NEW = 0, PH_BODY, PH_WORKING, PH_DONE };
enum route { RT_OP = 0, RT_HEALTH, RT_METRICS, RT_404, RT_405_GET, RT_405_POST };

struct request {
    struct fl_server *srv;
    struct MHD_Connection *conn;
    enum phase phase;
    enum route route;
    char *raw_uri; /* owned; as on the request line */
    char method[16];
    bool is_metrics;
    bool too_large;
    struct fl_buf body;     /* capped at cfg.body_limit */
    struct fl__kv *headers; /* owned array; names and values owned */
    size_t n_headers;
    const char *target; /* borrowed from headers */
    uint64_t t0_ns;     /* when the request line arrived */
    /* the prepared response */
    int http_status;
    const char *content_type;
    char *resp; /* owned; fl_malloc'd */
    size_t resp_len;
    const char *allow; /* Allow header for 405, static */
    char request_id[FL_UUID_STR_LEN + 1];
};

/* =============================== Responses =============================== */

/* Set the prepared response to a copy of body (len bytes). On allocation
 * failure the response becomes a bodiless 500. */
static void prepare(struct request *rq, int http, const char *ctype, const char *body, size_t len)
{
    fl_free(rq->resp);
    rq->resp = fl_malloc(len + 1);
    rq->http_status = http;
    rq->content_type = ctype;
    if (!rq->resp) {
        rq->http_status = 500;
        rq->resp_len = 0;
        return;
    }
    memcpy(rq->resp, body, len);
    rq->resp[len] = '\0';
    rq->resp_len = len;
}

/* Prepare an AWS error response for status st with message msg. Internal
 * errors get the generic text and the detail goes to the log with the
 * request id. */
static void prepare_error_http(struct request *rq, int http, const char *type, const char *msg)
{
    char logref[FL_UUID_STR_LEN + 1] = "";
    char *text = NULL;
    size_t len = 0;
    json_t *o;
    fl_uuid_v4(logref, NULL);
    o = json_object();
    if (o) {
        json_object_set_new(o, "__type", json_string(type));
        json_object_set_new(o, "Code", json_string(type));
        json_object_set_new(o, "Logref", json_string(logref));
        json_object_set_new(o, "Message", json_string(msg ? msg : ""));
    }
    if (o && fl_json_dump(o, &text, &len, NULL) == FL_OK) {
        prepare(rq, http, CT_JSON, text, len);
    } else {
        static const char fallback[] =
            "{\"__type\":\"InternalServerError\",\"Message\":\"Internal server error\"}";
        prepare(rq, 500, CT_JSON, fallback, sizeof(fallback) - 1);
    }
    fl_free(text);
    json_decref(o);
}

static void prepare_error(struct request *rq, enum fl_status st, const char *msg)
{
    if (fl_status_http(st) >= 500 && st != FL_ERR_BUSY) {
        FL_LOG_E("request %s: %s: %s", rq->request_id, fl_status_name(st), msg ? msg : "");
        msg = "Internal server error";
    }
    prepare_error_http(rq, fl_status_http(st), fl_status_exception(st), msg);
}

/* Queue the prepared response on the connection (I/O thread). */
static enum MHD_Result send_prepared(struct request *rq, struct MHD_Connection *conn)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    char *body = rq->resp;
    size_t len = rq->resp_len;
    rq->resp = NULL;
    rq->resp_len = 0;
    r = MHD_create_response_from_buffer_with_free_callback(len, body ? body : (char *)"",
                                                           body ? fl_free : NULL);
    if (!r) {
        fl_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rq->content_type ? rq->content_type : CT_JSON);
    MHD_add_response_header(r, "x-amzn-RequestId", rq->request_id);
    if (rq->allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rq->allow);
    ret = MHD_queue_response(conn, (unsigned)rq->http_status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ================================ Workers ================================ */

/* Number of elements of array member `key` in a JSON response (0 if none). */
static long count_array(const char *json, size_t len, const char *key)
{
    json_t *o = NULL;
    long n = 0;
    if (fl_json_parse_object(json, len, &o, NULL) == FL_OK) {
        json_t *a = json_object_get(o, key);
        if (json_is_array(a))
            n = (long)json_array_size(a);
        json_decref(o);
    }
    return n;
}

static enum fl_status default_dispatch(void *ctx, const char *target, const char *body,
                                       size_t body_len, char **out_json, size_t *out_len,
                                       struct fl_err *err)
{
    return fl_service_call(ctx, target, body, body_len, out_json, out_len, err);
}

static void default_free(void *ctx, char *s)
{
    (void)ctx;
    fl_free_string(s);
}

/* Authenticate, authorise and run one operation; prepares the response and
 * returns its status (for the metrics). Worker thread. */
static enum fl_status run_operation(struct request *rq)
{
    struct fl_server *srv = rq->srv;
    struct fl_err err;
    const char *target = rq->target;
    const char *op = target ? strchr(target, '.') : NULL;
    char *out = NULL;
    size_t out_len = 0;
    enum fl_status st;
    fl_err_clear(&err);

    if (srv->verify) {
        struct fl__sigv4_auth auth;
        char *q = strchr(rq->raw_uri, '?');
        char *path = fl_strndup(rq->raw_uri, q ? (size_t)(q - rq->raw_uri) : strlen(rq->raw_uri));
        if (!path) {
            prepare_error(rq, FL_ERR_NOMEM, "out of memory");
            return FL_ERR_NOMEM;
        }
        struct fl__sigv4_req sr = {
            .method = rq->method,
            .raw_path = path,
            .raw_query = q ? q + 1 : NULL,
            .headers = rq->headers,
            .n_headers = rq->n_headers,
            .body = rq->body.data,
            .body_len = rq->body.len,
        };
        st =
            fl__sigv4_verify(&sr, &srv->keyring, fl_time_now(), srv->cfg.clock_skew_s, &auth, &err);
        fl_free(path);
        if (st != FL_OK) {
            FL_LOG_I("request %s: auth failed: %s: %s", rq->request_id, fl_status_exception(st),
                     err.msg);
            prepare_error(rq, st, err.msg);
            return st;
        }
        if (auth.read_only && !fl__sigv4_read_only_op(op ? op + 1 : NULL)) {
            fl_err_set(&err, FL_ERR_ACCESS_DENIED,
                       "User: %s is not authorized to perform: rekognition:%s (read-only key)",
                       auth.access_key_id, op ? op + 1 : "");
            prepare_error(rq, FL_ERR_ACCESS_DENIED, err.msg);
            return FL_ERR_ACCESS_DENIED;
        }
    }
    if (!target || !*target) {
        prepare_error(rq, FL_ERR_UNKNOWN_OPERATION, "Missing X-Amz-Target header");
        return FL_ERR_UNKNOWN_OPERATION;
    }
    if (strncmp(target, "RekognitionService.", 19) != 0 &&
        strncmp(target, "FaceLinkService.", 16) != 0) {
        prepare_error(rq, FL_ERR_UNKNOWN_OPERATION, "Unknown X-Amz-Target prefix");
        return FL_ERR_UNKNOWN_OPERATION;
    }
    fl_server_dispatch_fn fn = srv->cfg.dispatch ? srv->cfg.dispatch : default_dispatch;
    fl_server_free_fn fr = srv->cfg.free_fn ? srv->cfg.free_fn : default_free;
    st = fn(srv->cfg.dispatch_ctx, target, rq->body.data ? rq->body.data : "", rq->body.len, &out,
            &out_len, &err);
    if (st == FL_OK) {
        if (!out) {
            prepare(rq, 200, CT_JSON, "{}", 2);
        } else {
            prepare(rq, 200, CT_JSON, out, out_len);
            if (strcmp(op + 1, "IndexFaces") == 0)
                fl__metrics_faces(srv->metrics, count_array(out, out_len, "FaceRecords"), 0);
            else if (strcmp(op + 1, "DeleteFaces") == 0)
                fl__metrics_faces(srv->metrics, 0, count_array(out, out_len, "DeletedFaces"));
        }
    } else {
        if (err.code == FL_OK || !err.msg[0])
            snprintf(err.msg, sizeof(err.msg), "%s", fl_status_name(st));
        prepare_error(rq, st, err.msg);
    }
    if (out)
        fr(srv->cfg.dispatch_ctx, out);
    return st;
}

#define METRICS_MAX_COLLECTIONS 1000

/* Append one gauge line per collection (faces and users) by asking the
 * service itself: ListCollections, then DescribeCollection for each, up to
 * METRICS_MAX_COLLECTIONS. Runs on a worker. A service that cannot answer
 * (e.g. not yet implemented) simply contributes no lines. */
static enum fl_status render_collections(struct fl_server *srv, struct fl_buf *b,
                                         struct fl_err *err)
{
    fl_server_dispatch_fn fn = srv->cfg.dispatch ? srv->cfg.dispatch : default_dispatch;
    fl_server_free_fn fr = srv->cfg.free_fn ? srv->cfg.free_fn : default_free;
    void *ctx = srv->cfg.dispatch_ctx;
    char *next = NULL;
    int n_done = 0;
    enum fl_status st = FL_OK;
    bool header = false;

    do {
        char *out = NULL, req[600];
        size_t out_len = 0;
        json_t *list = NULL, *req_o = json_object();
        char *req_s = NULL;
        struct fl_err e2;
        if (!req_o)
            break;
        json_object_set_new(req_o, "MaxResults", json_integer(1000));
        if (next)
            json_object_set_new(req_o, "NextToken", json_string(next));
        if (fl_json_dump(req_o, &req_s, NULL, NULL) != FL_OK) {
            json_decref(req_o);
            break;
        }
        json_decref(req_o);
        snprintf(req, sizeof(req), "%s", req_s);
        fl_free(req_s);
        fl_free(next);
        next = NULL;
        if (fn(ctx, "RekognitionService.ListCollections", req, strlen(req), &out, &out_len, &e2) !=
                FL_OK ||
            !out)
            break;
        if (fl_json_parse_object(out, out_len, &list, NULL) != FL_OK) {
            fr(ctx, out);
            break;
        }
        fr(ctx, out);
        json_t *ids = json_object_get(list, "CollectionIds");
        const char *nt = json_string_value(json_object_get(list, "NextToken"));
        next = nt ? fl_strdup(nt) : NULL;
        for (size_t i = 0; json_is_array(ids) && i < json_array_size(ids) && st == FL_OK &&
                           n_done < METRICS_MAX_COLLECTIONS;
             i++, n_done++) {
            const char *id = json_string_value(json_array_get(ids, i));
            json_t *d = NULL, *dreq = json_object();
            char *dreq_s = NULL, *dout = NULL;
            size_t dout_len = 0;
            if (!id || !dreq)
                break;
            json_object_set_new(dreq, "CollectionId", json_string(id));
            bool ok = fl_json_dump(dreq, &dreq_s, NULL, NULL) == FL_OK &&
                      fn(ctx, "RekognitionService.DescribeCollection", dreq_s, strlen(dreq_s),
                         &dout, &dout_len, &e2) == FL_OK &&
                      dout && fl_json_parse_object(dout, dout_len, &d, NULL) == FL_OK;
            json_decref(dreq);
            fl_free(dreq_s);
            if (dout)
                fr(ctx, dout);
            if (!ok)
                continue; /* deleted meanwhile */
            double faces = 0, users = 0;
            bool has_users = fl_json_number(json_object_get(d, "UserCount"), &users);
            fl_json_number(json_object_get(d, "FaceCount"), &faces);
            json_decref(d);
            /* CollectionId is [a-zA-Z0-9_.-]+: nothing to escape in a label */
            for (const char *c = id; *c; c++)
                if (*c == '"' || *c == '\\' || *c == '\n')
                    goto next_id;
            if (!header) {
                st = fl_buf_printf(b, err,
                                   "# HELP facelink_collection_faces Faces in a collection.\n"
                                   "# TYPE facelink_collection_faces gauge\n");
                header = true;
            }
            if (st == FL_OK)
                st = fl_buf_printf(b, err, "facelink_collection_faces{collection=\"%s\"} %.0f\n",
                                   id, faces);
            if (st == FL_OK && has_users)
                st = fl_buf_printf(b, err, "facelink_collection_users{collection=\"%s\"} %.0f\n",
                                   id, users);
        next_id:;
        }
        json_decref(list);
    } while (next && st == FL_OK && n_done < METRICS_MAX_COLLECTIONS);
    if (st == FL_OK && header)
        st = fl_buf_printf(b, err,
                           "# HELP facelink_collections Collections (counted up to %d).\n"
                           "# TYPE facelink_collections gauge\n"
                           "facelink_collections %d\n",
                           METRICS_MAX_COLLECTIONS, n_done);
    fl_free(next);
    return st;
}

static void render_metrics(struct request *rq)
{
    struct fl_server *srv = rq->srv;
    struct fl_buf b;
    struct fl_err err;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    long conns = di ? (long)di->num_connections : -1;
    fl_buf_init(&b, 16u << 20);
    enum fl_status st =
        fl__metrics_render(srv->metrics, fl__pool_depth(srv->pool), fl__pool_busy(srv->pool),
                           srv->n_workers, conns, &b, &err);
    if (st == FL_OK && srv->collection_metrics)
        st = render_collections(srv, &b, &err);
    if (st == FL_OK)
        prepare(rq, 200, CT_PROM, b.data ? b.data : "", b.len);
    else
        prepare_error(rq, err.code, err.msg);
    fl_buf_fini(&b);
}

/* The pool job: compute the response, then hand the request back to MHD.
 * After MHD_resume_connection() this thread must not touch rq. */
static void worker_job(void *arg)
{
    struct request *rq = arg;
    struct MHD_Connection *conn = rq->conn;
    if (rq->is_metrics) {
        render_metrics(rq);
    } else {
        enum fl_status st = run_operation(rq);
        double dt = (double)(fl_time_mono_ns() - rq->t0_ns) / 1e9;
        fl__metrics_observe(rq->srv->metrics, fl__metrics_op_index(rq->target), st, dt);
        FL_LOG_D("request %s: %s -> %d (%.1f ms)", rq->request_id, rq->target ? rq->target : "-",
                 rq->http_status, dt * 1e3);
    }
    rq->phase = PH_DONE;
    MHD_resume_connection(conn);
}

/* ================================ MHD glue ================================ */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct request *rq = fl_calloc(1, sizeof(*rq));
    (void)conn;
    if (!rq)
        return NULL;
    rq->srv = cls;
    rq->raw_uri = fl_strdup(uri ? uri : "/");
    rq->t0_ns = fl_time_mono_ns();
    fl_buf_init(&rq->body, rq->srv->cfg.body_limit + 1);
    if (!rq->raw_uri || fl_uuid_v4(rq->request_id, NULL) != FL_OK) {
        fl_free(rq->raw_uri);
        fl_free(rq);
        return NULL;
    }
    return rq;
}

static void request_free(struct request *rq)
{
    for (size_t i = 0; i < rq->n_headers; i++) {
        fl_free((char *)rq->headers[i].name);
        fl_free((char *)rq->headers[i].value);
    }
    fl_free(rq->headers);
    fl_buf_fini(&rq->body);
    fl_free(rq->resp);
    fl_free(rq->raw_uri);
    fl_free(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    if (*con_cls)
        request_free(*con_cls);
    *con_cls = NULL;
}

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct request *rq = cls;
    (void)kind;
    if (rq->n_headers >= MAX_HEADERS)
        return MHD_NO;
    if (rq->n_headers == 0) {
        rq->headers = fl_calloc(MAX_HEADERS, sizeof(*rq->headers));
        if (!rq->headers)
            return MHD_NO;
    }
    char *k = fl_strdup(key ? key : "");
    char *v = fl_strdup(value ? value : "");
    if (!k || !v) {
        fl_free(k);
        fl_free(v);
        return MHD_NO;
    }
    rq->headers[rq->n_headers].name = k;
    rq->headers[rq->n_headers].value = v;
    if (strcasecmp(k, "X-Amz-Target") == 0 && !rq->target)
        rq->target = v;
    rq->n_headers++;
    return MHD_YES;
}

/* Suspend the connection and give the request to a worker; on a full queue
 * answer ThrottlingException at once (I/O thread). */
static enum MHD_Result hand_to_pool(struct request *rq, struct MHD_Connection *conn)
{
    rq->conn = conn;
    rq->phase = PH_WORKING;
    MHD_suspend_connection(conn);
    if (!fl__pool_submit(rq->srv->pool, worker_job, rq)) {
        prepare_error(rq, FL_ERR_BUSY, "Slow down; sudden increase in rate of requests.");
        if (!rq->is_metrics)
            fl__metrics_observe(rq->srv->metrics, fl__metrics_op_index(rq->target), FL_ERR_BUSY, 0);
        rq->phase = PH_DONE;
        MHD_resume_connection(conn);
    }
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **con_cls)
{
    struct fl_server *srv = cls;
    struct request *rq = *con_cls;
    (void)version;
    if (!rq)
        return MHD_NO; /* the URI callback ran out of memory: drop the connection */

    switch (rq->phase) {
    case PH_NEW: {
        bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        snprintf(rq->method, sizeof(rq->method), "%s", method);
        if (strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0) {
            if (!is_get)
                rq->route = RT_405_GET;
            else
                rq->route = url[1] == 'h' ? RT_HEALTH : RT_METRICS;
        } else if (strcmp(url, "/") != 0) {
            rq->route = RT_404;
        } else if (strcmp(method, "POST") != 0) {
            rq->route = RT_405_POST;
        } else {
            rq->route = RT_OP;
            const char *cl =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            char *end = NULL;
            unsigned long long n = cl ? strtoull(cl, &end, 10) : 0;
            if (cl && end != cl && n > srv->cfg.body_limit) {
                /* Answer before reading the body; MHD then closes the
                 * connection, so the unread body cannot be mistaken for the
                 * next request. */
                char m[160];
                snprintf(m, sizeof(m),
                         "Image size is too large. Request body of %llu bytes exceeds the "
                         "limit of %zu bytes.",
                         n, srv->cfg.body_limit);
                prepare_error(rq, FL_ERR_IMAGE_TOO_LARGE, m);
                fl__metrics_observe(srv->metrics,
                                    fl__metrics_op_index(MHD_lookup_connection_value(
                                        conn, MHD_HEADER_KIND, "X-Amz-Target")),
                                    FL_ERR_IMAGE_TOO_LARGE, 0);
                return send_prepared(rq, conn);
            }
        }
        rq->phase = PH_BODY;
        return MHD_YES;
    }
    case PH_BODY:
        if (*upload_size) {
            if (rq->route == RT_OP && !rq->too_large &&
                fl_buf_append(&rq->body, upload_data, *upload_size, NULL) != FL_OK)
                rq->too_large = true; /* over the cap (or out of memory): discard the rest */
            *upload_size = 0;
            return MHD_YES;
        }
        /* The request is complete: answer it (responding only now, not at
         * the first call, keeps the connection alive). */
        switch (rq->route) {
        case RT_HEALTH: {
            static const char ok[] = "{\"status\":\"ok\"}";
            prepare(rq, 200, "application/json", ok, sizeof(ok) - 1);
            return send_prepared(rq, conn);
        }
        case RT_METRICS:
            rq->is_metrics = true;
            return hand_to_pool(rq, conn);
        case RT_404:
            prepare_error_http(rq, 404, "NotFound", "Operations are POSTed to /");
            return send_prepared(rq, conn);
        case RT_405_GET:
            rq->allow = "GET, HEAD";
            prepare_error_http(rq, 405, "MethodNotAllowed", "Use GET");
            return send_prepared(rq, conn);
        case RT_405_POST:
            rq->allow = "POST";
            prepare_error_http(rq, 405, "MethodNotAllowed",
                               "Operations are POST / with an X-Amz-Target header");
            return send_prepared(rq, conn);
        case RT_OP:
            break;
        }
        MHD_get_connection_values(conn, MHD_HEADER_KIND, copy_header, rq);
        if (rq->too_large) {
            char m[128];
            snprintf(m, sizeof(m),
                     "Image size is too large. Request body exceeds the limit of %zu bytes.",
                     srv->cfg.body_limit);
            prepare_error(rq, FL_ERR_IMAGE_TOO_LARGE, m);
            fl__metrics_observe(srv->metrics, fl__metrics_op_index(rq->target),
                                FL_ERR_IMAGE_TOO_LARGE, 0);
            return send_prepared(rq, conn);
        }
        return hand_to_pool(rq, conn);
    case PH_WORKING:
        return MHD_YES; /* cannot happen while suspended */
    case PH_DONE:
        return send_prepared(rq, conn);
    }
    return MHD_NO;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char m[512];
    (void)cls;
    vsnprintf(m, sizeof(m), fmt, ap);
    size_t n = strlen(m);
    while (n > 0 && m[n - 1] == '\n')
        m[--n] = '\0';
    FL_LOG_W("microhttpd: %s", m);
}

/* ================================ Lifecycle ================================ */

static int n_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

struct fl_server *fl_server_start(const struct fl_server_config *cfg, struct fl_err *err)
{
    struct fl_server *srv = NULL;
    struct sockaddr_storage ss;
    unsigned ss_len = 0;
    bool loopback = false;
    fl_core_init();
    if (fl_server_config_validate(cfg, err) != FL_OK)
        return NULL;
    srv = fl_calloc(1, sizeof(*srv));
    if (!srv) {
        fl_err_set(err, FL_ERR_NOMEM, "server: out of memory");
        return NULL;
    }
    if (fl__server_config_copy(&srv->cfg, cfg, err) != FL_OK) {
        fl_free(srv);
        return NULL;
    }
    if (fl__server_parse_listen(srv->cfg.listen, &ss, &ss_len, &loopback, err) != FL_OK)
        goto fail;
    srv->keyring.keys = srv->cfg.keys;
    srv->keyring.n_keys = srv->cfg.n_keys;
    srv->verify = srv->cfg.n_keys > 0 && !srv->cfg.auth_off;
    /* /metrics is unauthenticated (scrapers do not sign): collection ids are
     * listed there only where the address is private, unless asked. */
    srv->collection_metrics =
        srv->cfg.collection_metrics < 0 ? loopback : srv->cfg.collection_metrics != 0;
    srv->n_workers = srv->cfg.n_workers > 0 ? srv->cfg.n_workers : n_cores();
    int n_io = srv->cfg.n_io_threads > 0 ? srv->cfg.n_io_threads : FL_MIN(n_cores(), 4);
    int queue = srv->cfg.queue_max > 0 ? srv->cfg.queue_max : 8 * srv->n_workers;

    srv->metrics = fl__metrics_new(err);
    if (!srv->metrics)
        goto fail;
    srv->pool = fl__pool_new(srv->n_workers, queue, err);
    if (!srv->pool)
        goto fail;

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)n_io,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)srv->cfg.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)srv->cfg.max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_END);
    if (!srv->daemon) {
        fl_err_set(err, FL_ERR_IO, "server: cannot listen on %s (address in use or not local?)",
                   srv->cfg.listen);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : 0;
    if (!srv->verify)
        FL_LOG_W("authentication is off (%s): requests are accepted unsigned; only loopback "
                 "clients can reach %s",
                 srv->cfg.auth_off ? "--no-auth" : "no access keys configured", srv->cfg.listen);
    FL_LOG_I("listening on %s (port %u), %d workers, %d I/O threads, queue %d, body limit %zu",
             srv->cfg.listen, (unsigned)srv->port, srv->n_workers, n_io, queue,
             srv->cfg.body_limit);
    return srv;
fail:
    fl_server_stop(srv);
    return NULL;
}

uint16_t fl_server_port(const struct fl_server *srv)
{
    return srv ? srv->port : 0;
}

void fl_server_stop(struct fl_server *srv)
{
    if (!srv)
        return;
    if (srv->daemon) {
        /* Stop accepting, then let the workers finish every queued request
         * (each resumes its connection) before MHD closes the connections:
         * MHD must not be stopped with suspended connections. */
        MHD_socket s = MHD_quiesce_daemon(srv->daemon);
        fl__pool_shutdown(srv->pool);
        MHD_stop_daemon(srv->daemon);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
    fl__pool_free(srv->pool);
    fl__metrics_free(srv->metrics);
    fl_server_config_fini(&srv->cfg);
    fl_free(srv);
}
