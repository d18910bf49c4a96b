/* test_server.c: the HTTP server end to end, in process, on ephemeral ports
 * of 127.0.0.1, driven by a small raw-socket HTTP/1.1 client, with a fake
 * dispatch function in place of the service. Checks routing, the AWS response
 * and error shapes (status, headers, body), body limits, keep-alive, the
 * full-queue ThrottlingException, SigV4 and read-only keys, metrics, and the
 * refusal to listen beyond loopback without keys. */
#include "t.h"
#include "server/server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

T_MAIN_STATE;

/* ============================== Fake service ============================== */

struct fake {
    atomic_int calls;
    int slow_ms;
    char last_target[128];
    char last_body[256];
    size_t last_len;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *dup_out(const char *s, size_t *out_len)
{
    *out_len = strlen(s);
    return fl_strdup(s);
}

static enum fl_status fake_dispatch(void *ctx, const char *target, const char *body,
                                    size_t body_len, char **out, size_t *out_len,
                                    struct fl_err *err)
{
    struct fake *f = ctx;
    atomic_fetch_add(&f->calls, 1);
    snprintf(f->last_target, sizeof(f->last_target), "%s", target);
    f->last_len = body_len;
    memcpy(f->last_body, body, FL_MIN(body_len, sizeof(f->last_body) - 1));
    f->last_body[FL_MIN(body_len, sizeof(f->last_body) - 1)] = '\0';
    const char *op = strchr(target, '.') + 1;
    json_t *o = NULL;
    if (fl_json_parse_object(body, body_len, &o, err) != FL_OK)
        return err->code; /* SerializationException with jansson's position */
    const char *cid = json_string_value(json_object_get(o, "CollectionId"));
    bool is_a = cid && strcmp(cid, "a") == 0;
    json_decref(o);
    if (strcmp(op, "DescribeCollection") == 0 && is_a) {
        *out = dup_out("{\"FaceCount\":3,\"UserCount\":1,\"FaceModelVersion\":\"7.0\"}", out_len);
        return *out ? FL_OK : FL_ERR_NOMEM;
    }
    if (strcmp(op, "ListCollections") == 0) {
        *out = dup_out("{\"CollectionIds\":[\"a\"],\"FaceModelVersions\":[\"7.0\"]}", out_len);
        return *out ? FL_OK : FL_ERR_NOMEM;
    }
    if (strcmp(op, "DescribeCollection") == 0)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The collection id: x does not exist");
    if (strcmp(op, "IndexFaces") == 0 || strcmp(op, "SearchFaces") == 0) {
        *out = dup_out("{\"FaceRecords\":[{},{}]}", out_len);
        return *out ? FL_OK : FL_ERR_NOMEM;
    }
    if (strcmp(op, "DetectFaces") == 0) { /* slow */
        sleep_ms(f->slow_ms);
        *out = dup_out("{\"FaceDetails\":[]}", out_len);
        return *out ? FL_OK : FL_ERR_NOMEM;
    }
    if (strcmp(op, "CompareFaces") == 0)
        return fl_err_set(err, FL_ERR_INTERNAL, "secret internal detail");
    return fl_err_set(err, FL_ERR_UNKNOWN_OPERATION, "unknown operation %s", op);
}

static void fake_free(void *ctx, char *s)
{
    (void)ctx;
    fl_free(s);
}

/* ============================== HTTP client ============================== */

struct resp {
    int status;
    char head[8192]; /* status line and headers */
    char body[65536];
    size_t body_len;
};

static int connect_port(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    struct timeval tv = {5, 0};
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* Value of header name in r (copied into out), or NULL. */
static const char *hdr(const struct resp *r, const char *name, char *out, size_t cap)
{
    const char *p = r->head;
    size_t nl = strlen(name);
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Read one response (Content-Length framed). */
static bool read_resp(int fd, struct resp *r)
{
    size_t n = 0;
    char *end = NULL;
    memset(r, 0, sizeof(*r));
    while (!end) {
        if (n >= sizeof(r->head) - 1)
            return false;
        ssize_t k = recv(fd, r->head + n, 1, 0); /* byte-wise: keep the next response intact */
        if (k <= 0)
            return false;
        n += (size_t)k;
        r->head[n] = '\0';
        end = strstr(r->head, "\r\n\r\n");
    }
    end[2] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return false;
    char cl[32];
    size_t want = hdr(r, "Content-Length", cl, sizeof(cl)) ? strtoul(cl, NULL, 10) : 0;
    if (want >= sizeof(r->body))
        return false;
    while (r->body_len < want) {
        ssize_t k = recv(fd, r->body + r->body_len, want - r->body_len, 0);
        if (k <= 0)
            return false;
        r->body_len += (size_t)k;
    }
    r->body[r->body_len] = '\0';
    return true;
}

static char *format_req(uint16_t port, const char *method, const char *path, const char *target,
                        const char *body, const char *extra)
{
    struct fl_buf b;
    fl_buf_init(&b, 1 << 20);
    fl_buf_printf(&b, NULL, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n", method, path,
                  (unsigned)port);
    if (target)
        fl_buf_printf(&b, NULL, "X-Amz-Target: %s\r\n", target);
    if (body)
        fl_buf_printf(&b, NULL,
                      "Content-Type: application/x-amz-json-1.1\r\nContent-Length: %zu\r\n",
                      strlen(body));
    fl_buf_printf(&b, NULL, "%s\r\n%s", extra ? extra : "", body ? body : "");
    return fl_buf_take(&b, NULL);
}

/* One request on a fresh connection. */
static bool request(uint16_t port, const char *method, const char *path, const char *target,
                    const char *body, const char *extra, struct resp *r)
{
    int fd = connect_port(port);
    char *req = format_req(port, method, path, target, body, extra);
    bool ok = fd >= 0 && req && send_all(fd, req, strlen(req)) && read_resp(fd, r);
    fl_free(req);
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Parse an AWS error body and check its shape; returns __type (static copy). */
static const char *error_type(const struct resp *r, char *msg, size_t cap)
{
    static char type[128];
    json_t *o = NULL;
    type[0] = '\0';
    if (fl_json_parse_object(r->body, r->body_len, &o, NULL) != FL_OK)
        return "(not json)";
    const char *t = json_string_value(json_object_get(o, "__type"));
    const char *c = json_string_value(json_object_get(o, "Code"));
    const char *l = json_string_value(json_object_get(o, "Logref"));
    const char *m = json_string_value(json_object_get(o, "Message"));
    if (t && c && l && m && strcmp(t, c) == 0 && fl_uuid_valid(l))
        snprintf(type, sizeof(type), "%s", t);
    else
        snprintf(type, sizeof(type), "(bad shape)");
    if (msg)
        snprintf(msg, cap, "%s", m ? m : "");
    json_decref(o);
    return type;
}

/* ============================== Fixtures ============================== */

static struct fake fake;

static struct fl_server *start(void (*tweak)(struct fl_server_config *), struct fl_err *err)
{
    struct fl_server_config cfg;
    struct fl_server *s;
    fl_server_config_init(&cfg);
    fl_server_config_set(&cfg, "listen", "127.0.0.1:0", NULL);
    cfg.n_workers = 2;
    cfg.n_io_threads = 1;
    cfg.dispatch = fake_dispatch;
    cfg.free_fn = fake_free;
    cfg.dispatch_ctx = &fake;
    if (tweak)
        tweak(&cfg);
    s = fl_server_start(&cfg, err);
    fl_server_config_fini(&cfg);
    return s;
}

static struct fl_server *srv; /* the default server, no keys */
static uint16_t port;

/* =============================== Tests =============================== */

static void test_healthz(void)
{
    struct resp r;
    char v[128];
    T_REQUIRE(request(port, "GET", "/healthz", NULL, NULL, NULL, &r));
    T_CHECK_EQ_INT(r.status, 200);
    T_CHECK_EQ_STR(r.body, "{\"status\":\"ok\"}");
    T_CHECK(hdr(&r, "Content-Type", v, sizeof(v)) && strcmp(v, "application/json") == 0);
}

static void test_operation_ok(void)
{
    struct resp r;
    char v[128];
    T_REQUIRE(request(port, "POST", "/", "RekognitionService.ListCollections", "{}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 200);
    T_CHECK_EQ_STR(r.body, "{\"CollectionIds\":[\"a\"],\"FaceModelVersions\":[\"7.0\"]}");
    T_CHECK(hdr(&r, "Content-Type", v, sizeof(v)) && strcmp(v, "application/x-amz-json-1.1") == 0);
    T_CHECK(hdr(&r, "x-amzn-RequestId", v, sizeof(v)) && fl_uuid_valid(v));
    T_CHECK_EQ_STR(fake.last_target, "RekognitionService.ListCollections");
    T_CHECK_EQ_STR(fake.last_body, "{}");
}

static void test_aws_error(void)
{
    struct resp r;
    char v[128], msg[256];
    T_REQUIRE(request(port, "POST", "/", "RekognitionService.DescribeCollection",
                      "{\"CollectionId\":\"x\"}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, msg, sizeof(msg)), "ResourceNotFoundException");
    T_CHECK_EQ_STR(msg, "The collection id: x does not exist");
    T_CHECK(hdr(&r, "Content-Type", v, sizeof(v)) && strcmp(v, "application/x-amz-json-1.1") == 0);
    T_CHECK(hdr(&r, "x-amzn-RequestId", v, sizeof(v)) && fl_uuid_valid(v));
    /* body keys in the documented order */
    T_CHECK(strncmp(r.body, "{\"__type\":\"ResourceNotFoundException\",\"Code\":", 44) == 0);
}

static void test_internal_error_hidden(void)
{
    struct resp r;
    char msg[256];
    T_REQUIRE(request(port, "POST", "/", "RekognitionService.CompareFaces", "{}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 500);
    T_CHECK_EQ_STR(error_type(&r, msg, sizeof(msg)), "InternalServerError");
    T_CHECK_EQ_STR(msg, "Internal server error");
    T_CHECK(strstr(r.body, "secret") == NULL);
}

static void test_unknown_target(void)
{
    struct resp r;
    int calls = atomic_load(&fake.calls);
    T_REQUIRE(request(port, "POST", "/", "Foo.Bar", "{}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "UnknownOperationException");
    T_REQUIRE(request(port, "POST", "/", NULL, "{}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "UnknownOperationException");
    T_CHECK_EQ_INT(atomic_load(&fake.calls), calls); /* neither reached the service */
    T_REQUIRE(request(port, "POST", "/", "RekognitionService.NoSuchOp", "{}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "UnknownOperationException");
}

/* The server does not parse bodies: the bytes reach the service unchanged and
 * its SerializationException comes back as is. */
static void test_malformed_json_passthrough(void)
{
    struct resp r;
    char msg[256];
    T_REQUIRE(
        request(port, "POST", "/", "RekognitionService.ListCollections", "{\"a\":", NULL, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, msg, sizeof(msg)), "SerializationException");
    T_CHECK_EQ_STR(fake.last_body, "{\"a\":");
    T_CHECK_EQ_INT(fake.last_len, 5);
}

static void test_routes_404_405(void)
{
    struct resp r;
    char v[64];
    T_REQUIRE(request(port, "GET", "/nope", NULL, NULL, NULL, &r));
    T_CHECK_EQ_INT(r.status, 404);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "NotFound");
    T_REQUIRE(request(port, "GET", "/", NULL, NULL, NULL, &r));
    T_CHECK_EQ_INT(r.status, 405);
    T_CHECK(hdr(&r, "Allow", v, sizeof(v)) && strcmp(v, "POST") == 0);
    T_REQUIRE(request(port, "POST", "/healthz", NULL, "{}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 405);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "MethodNotAllowed");
}

/* Several requests, an error among them, on one connection. */
static void test_keep_alive(void)
{
    int fd = connect_port(port);
    struct resp r;
    char v[64];
    T_REQUIRE(fd >= 0);
    const char *targets[] = {"RekognitionService.ListCollections",
                             "RekognitionService.DescribeCollection",
                             "RekognitionService.ListCollections"};
    int want[] = {200, 400, 200};
    for (int i = 0; i < 3; i++) {
        char *req = format_req(port, "POST", "/", targets[i], "{}", NULL);
        T_CHECK(req && send_all(fd, req, strlen(req)));
        fl_free(req);
        T_CHECK(read_resp(fd, &r));
        T_CHECK_EQ_INT(r.status, want[i]);
        T_CHECK(!hdr(&r, "Connection", v, sizeof(v)) || strcasecmp(v, "close") != 0);
    }
    char *req = format_req(port, "GET", "/healthz", NULL, NULL, NULL);
    T_CHECK(send_all(fd, req, strlen(req)) && read_resp(fd, &r) && r.status == 200);
    fl_free(req);
    close(fd);
}

static void small_limit(struct fl_server_config *c)
{
    c->body_limit = 4096;
}

static void test_body_limit(void)
{
    struct fl_err err;
    struct fl_server *s = start(small_limit, &err);
    struct resp r;
    char msg[256];
    T_REQUIRE(s != NULL);
    uint16_t p = fl_server_port(s);
    /* declared too large: answered before any body is sent */
    int fd = connect_port(p);
    char head[256];
    snprintf(head, sizeof(head),
             "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: RekognitionService.IndexFaces\r\n"
             "Content-Length: 100000\r\n\r\n");
    T_CHECK(fd >= 0 && send_all(fd, head, strlen(head)) && read_resp(fd, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, msg, sizeof(msg)), "ImageTooLargeException");
    T_CHECK(strstr(msg, "4096") != NULL);
    close(fd);
    /* chunked, growing past the limit */
    fd = connect_port(p);
    char *big = fl_malloc(8192 + 1);
    T_REQUIRE(big != NULL);
    memset(big, ' ', 8192);
    big[0] = '{';
    big[8191] = '}';
    big[8192] = '\0';
    snprintf(head, sizeof(head),
             "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: RekognitionService.IndexFaces\r\n"
             "Transfer-Encoding: chunked\r\n\r\n2000\r\n");
    T_CHECK(fd >= 0 && send_all(fd, head, strlen(head)) && send_all(fd, big, 8192) &&
            send_all(fd, "\r\n0\r\n\r\n", 7) && read_resp(fd, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "ImageTooLargeException");
    close(fd);
    /* exactly at the limit: accepted */
    big[4095] = '}';
    big[4096] = '\0';
    T_CHECK(request(p, "POST", "/", "RekognitionService.ListCollections", big, NULL, &r));
    T_CHECK_EQ_INT(r.status, 200);
    fl_free(big);
    fl_server_stop(s);
}

static void one_worker(struct fl_server_config *c)
{
    c->n_workers = 1;
    c->queue_max = 1;
}

/* One worker busy, one request queued: the next is answered
 * ThrottlingException (500) at once, and the first two still complete. */
static void test_queue_full_throttles(void)
{
    struct fl_err err;
    struct fl_server *s = start(one_worker, &err);
    struct resp r;
    int fd[3];
    T_REQUIRE(s != NULL);
    uint16_t p = fl_server_port(s);
    fake.slow_ms = 600;
    for (int i = 0; i < 3; i++) {
        fd[i] = connect_port(p);
        T_REQUIRE(fd[i] >= 0);
        char *req = format_req(p, "POST", "/", "RekognitionService.DetectFaces", "{}", NULL);
        T_CHECK(send_all(fd[i], req, strlen(req)));
        fl_free(req);
        sleep_ms(100); /* let the server take each in turn */
    }
    uint64_t t0 = fl_time_mono_ns();
    T_CHECK(read_resp(fd[2], &r));
    double waited = (double)(fl_time_mono_ns() - t0) / 1e9;
    T_CHECK_EQ_INT(r.status, 500);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "ThrottlingException");
    T_CHECK(waited < 0.3); /* not queued behind the slow requests */
    T_CHECK(read_resp(fd[0], &r) && r.status == 200);
    T_CHECK(read_resp(fd[1], &r) && r.status == 200);
    for (int i = 0; i < 3; i++)
        close(fd[i]);
    fake.slow_ms = 0;
    fl_server_stop(s);
}

/* ------------------------------- SigV4 ------------------------------- */

#define KEY_RW "AKIDRW"
#define SEC_RW "rw-secret/with+chars"
#define KEY_RO "AKIDRO"
#define SEC_RO "ro-secret"

static void with_keys(struct fl_server_config *c)
{
    fl_server_config_set(c, "keys", KEY_RW ":" SEC_RW, NULL);
    fl_server_config_set(c, "read-only-keys", KEY_RO ":" SEC_RO, NULL);
}

/* Build the Authorization header for a POST / as botocore does (signed
 * host, x-amz-date, x-amz-target) at time t; writes "X-Amz-Date: ..\r\n
 * Authorization: ..\r\n" into out. */
static void sign(uint16_t p, const char *key, const char *secret, const char *target,
                 const char *body, double t, char *out, size_t cap)
{
    char date[17], host[64], scope[64], body_hash[65], sig[65];
    char *creq = NULL, *sts = NULL;
    fl__sigv4_format_date(t, date);
    snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned)p);
    snprintf(scope, sizeof(scope), "%.8s/us-east-1/rekognition/aws4_request", date);
    struct fl__kv h[] = {{"Host", host}, {"X-Amz-Date", date}, {"X-Amz-Target", target}};
    struct fl__sigv4_req r = {"POST", "/", NULL, h, 3, body, strlen(body)};
    fl_sha256_hex(body, strlen(body), body_hash);
    fl__sigv4_canonical_request(&r, "host;x-amz-date;x-amz-target", body_hash, false, &creq, NULL);
    fl__sigv4_string_to_sign(date, scope, creq, &sts, NULL);
    char d8[9];
    memcpy(d8, date, 8);
    d8[8] = '\0';
    fl__sigv4_signature(secret, d8, "us-east-1", "rekognition", sts, sig);
    snprintf(out, cap,
             "X-Amz-Date: %s\r\nAuthorization: AWS4-HMAC-SHA256 Credential=%s/%s, "
             "SignedHeaders=host;x-amz-date;x-amz-target, Signature=%s\r\n",
             date, key, scope, sig);
    fl_free(creq);
    fl_free(sts);
}

static void test_sigv4(void)
{
    struct fl_err err;
    struct fl_server *s = start(with_keys, &err);
    struct resp r;
    char h[512], msg[256];
    T_REQUIRE(s != NULL);
    uint16_t p = fl_server_port(s);
    const char *list = "RekognitionService.ListCollections";
    double now = fl_time_now();

    /* unsigned */
    T_REQUIRE(request(p, "POST", "/", list, "{}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "MissingAuthenticationTokenException");
    /* signed right */
    sign(p, KEY_RW, SEC_RW, list, "{}", now, h, sizeof(h));
    T_REQUIRE(request(p, "POST", "/", list, "{}", h, &r));
    T_CHECK_EQ_INT(r.status, 200);
    /* wrong secret */
    sign(p, KEY_RW, "not-the-secret", list, "{}", now, h, sizeof(h));
    T_REQUIRE(request(p, "POST", "/", list, "{}", h, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, msg, sizeof(msg)), "InvalidSignatureException");
    T_CHECK(strstr(msg, "does not match") != NULL);
    /* signed for another body */
    sign(p, KEY_RW, SEC_RW, list, "{}", now, h, sizeof(h));
    T_REQUIRE(request(p, "POST", "/", list, "{\"MaxResults\":1}", h, &r));
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "InvalidSignatureException");
    /* unknown key */
    sign(p, "AKIDNOBODY", SEC_RW, list, "{}", now, h, sizeof(h));
    T_REQUIRE(request(p, "POST", "/", list, "{}", h, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, NULL, 0), "UnrecognizedClientException");
    /* 20 minutes old */
    sign(p, KEY_RW, SEC_RW, list, "{}", now - 1200, h, sizeof(h));
    T_REQUIRE(request(p, "POST", "/", list, "{}", h, &r));
    T_CHECK_EQ_STR(error_type(&r, msg, sizeof(msg)), "InvalidSignatureException");
    T_CHECK(strncmp(msg, "Signature expired: ", 19) == 0);
    /* read-only key: a search is allowed, an index is not */
    sign(p, KEY_RO, SEC_RO, "RekognitionService.SearchFaces", "{}", now, h, sizeof(h));
    T_REQUIRE(request(p, "POST", "/", "RekognitionService.SearchFaces", "{}", h, &r));
    T_CHECK_EQ_INT(r.status, 200);
    int calls = atomic_load(&fake.calls);
    sign(p, KEY_RO, SEC_RO, "RekognitionService.IndexFaces", "{}", now, h, sizeof(h));
    T_REQUIRE(request(p, "POST", "/", "RekognitionService.IndexFaces", "{}", h, &r));
    T_CHECK_EQ_INT(r.status, 400);
    T_CHECK_EQ_STR(error_type(&r, msg, sizeof(msg)), "AccessDeniedException");
    T_CHECK(strstr(msg, "rekognition:IndexFaces") != NULL);
    T_CHECK_EQ_INT(atomic_load(&fake.calls), calls);
    /* health stays open */
    T_REQUIRE(request(p, "GET", "/healthz", NULL, NULL, NULL, &r));
    T_CHECK_EQ_INT(r.status, 200);
    fl_server_stop(s);
}

static void no_auth(struct fl_server_config *c)
{
    with_keys(c);
    c->auth_off = true;
}

static void test_no_auth_flag(void)
{
    struct fl_err err;
    struct fl_server *s = start(no_auth, &err);
    struct resp r;
    T_REQUIRE(s != NULL);
    T_REQUIRE(request(fl_server_port(s), "POST", "/", "RekognitionService.ListCollections", "{}",
                      NULL, &r));
    T_CHECK_EQ_INT(r.status, 200);
    fl_server_stop(s);
}

static void public_no_keys(struct fl_server_config *c)
{
    fl_server_config_set(c, "listen", "0.0.0.0:0", NULL);
}

static void public_no_auth(struct fl_server_config *c)
{
    with_keys(c);
    fl_server_config_set(c, "listen", "0.0.0.0:0", NULL);
    c->auth_off = true;
}

static void test_non_loopback_refused(void)
{
    struct fl_err err;
    fl_err_clear(&err);
    struct fl_server *s = start(public_no_keys, &err);
    T_CHECK(s == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    T_CHECK(strstr(err.msg, "refusing to listen on 0.0.0.0:0") != NULL);
    fl_server_stop(s);
    s = start(public_no_auth, &err);
    T_CHECK(s == NULL);
    fl_server_stop(s);
    /* with keys and auth on, the configuration is acceptable (not bound here) */
    struct fl_server_config c;
    fl_server_config_init(&c);
    with_keys(&c);
    fl_server_config_set(&c, "listen", "0.0.0.0:0", NULL);
    T_CHECK_EQ_INT(fl_server_config_validate(&c, &err), FL_OK);
    fl_server_config_set(&c, "listen", "[::]:8085", NULL);
    T_CHECK_EQ_INT(fl_server_config_validate(&c, &err), FL_OK);
    fl_server_config_fini(&c);
}

static void test_metrics(void)
{
    struct resp r;
    char v[128];
    T_REQUIRE(request(port, "POST", "/", "RekognitionService.IndexFaces", "{}", NULL, &r));
    T_CHECK_EQ_INT(r.status, 200);
    T_REQUIRE(request(port, "GET", "/metrics", NULL, NULL, NULL, &r));
    T_CHECK_EQ_INT(r.status, 200);
    T_CHECK(hdr(&r, "Content-Type", v, sizeof(v)) &&
            strncmp(v, "text/plain; version=0.0.4", 25) == 0);
    T_CHECK(strstr(r.body,
                   "facelink_requests_total{op=\"ListCollections\",code=\"200\",error=\"\"} ") !=
            NULL);
    T_CHECK(strstr(r.body, "facelink_requests_total{op=\"DescribeCollection\",code=\"400\","
                           "error=\"ResourceNotFoundException\"} ") != NULL);
    T_CHECK(strstr(r.body, "facelink_requests_total{op=\"other\",code=\"400\","
                           "error=\"UnknownOperationException\"} ") != NULL);
    T_CHECK(strstr(r.body, "\nfacelink_faces_indexed_total 2\n") != NULL);
    T_CHECK(strstr(r.body,
                   "facelink_request_duration_seconds_bucket{op=\"IndexFaces\",le=\"+Inf\"} 1\n") !=
            NULL);
    T_CHECK(strstr(r.body, "\nfacelink_queue_depth 0\n") != NULL);
    T_CHECK(strstr(r.body, "\nfacelink_workers 2\n") != NULL);
    T_CHECK(strstr(r.body, "# TYPE facelink_request_duration_seconds histogram\n") != NULL);
    /* collection sizes, asked of the service (fake: collection "a", 3 faces, 1 user) */
    T_CHECK(strstr(r.body, "\nfacelink_collection_faces{collection=\"a\"} 3\n") != NULL);
    T_CHECK(strstr(r.body, "\nfacelink_collection_users{collection=\"a\"} 1\n") != NULL);
    T_CHECK(strstr(r.body, "\nfacelink_collections 1\n") != NULL);
    /* every sample line is NAME{labels} VALUE or NAME VALUE */
    int bad = 0;
    for (char *l = r.body; *l;) {
        char *e = strchr(l, '\n');
        if (!e)
            break;
        *e = '\0';
        if (*l != '#') {
            char name[128];
            double val;
            const char *sp = strrchr(l, ' ');
            if (sscanf(l, "%127[a-z_]", name) != 1 || strncmp(name, "facelink_", 9) != 0 || !sp ||
                sscanf(sp + 1, "%lf", &val) != 1)
                bad++;
        }
        *e = '\n';
        l = e + 1;
    }
    T_CHECK_EQ_INT(bad, 0);
}

static void no_collection_metrics(struct fl_server_config *c)
{
    fl_server_config_set(c, "collection-metrics", "off", NULL);
}

static void test_metrics_collections_off(void)
{
    struct fl_err err;
    struct fl_server *s = start(no_collection_metrics, &err);
    struct resp r;
    T_REQUIRE(s != NULL);
    T_REQUIRE(request(fl_server_port(s), "GET", "/metrics", NULL, NULL, NULL, &r));
    T_CHECK_EQ_INT(r.status, 200);
    T_CHECK(strstr(r.body, "facelink_queue_depth") != NULL);
    T_CHECK(strstr(r.body, "facelink_collection_faces") == NULL);
    fl_server_stop(s);
}

static void test_no_leaks(void)
{
    fl_server_stop(srv);
    srv = NULL;
    T_CHECK_EQ_INT(fl_alloc_live(), 0);
}

int main(int argc, char **argv)
{
    struct fl_err err;
    t_init(argc, argv);
    fl_core_init();
    fl_log_setup(FL_LOG_OFF, false);
    srv = start(NULL, &err);
    if (!srv) {
        printf("# cannot start the server: %s\n", err.msg);
        return 1;
    }
    port = fl_server_port(srv);
    T_RUN(test_healthz);
    T_RUN(test_operation_ok);
    T_RUN(test_aws_error);
    T_RUN(test_internal_error_hidden);
    T_RUN(test_unknown_target);
    T_RUN(test_malformed_json_passthrough);
    T_RUN(test_routes_404_405);
    T_RUN(test_keep_alive);
    T_RUN(test_metrics);
    T_RUN(test_metrics_collections_off);
    T_RUN(test_body_limit);
    T_RUN(test_queue_full_throttles);
    T_RUN(test_sigv4);
    T_RUN(test_no_auth_flag);
    T_RUN(test_non_loopback_refused);
    T_RUN(test_no_leaks);
    fl_server_stop(srv);
    return t_done();
}
