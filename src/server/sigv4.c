/*
 * sigv4.c: verification of AWS Signature Version 4 requests.
 *
 * What: given the request as it came off the wire (method, raw path, raw
 * query, headers, body) and the configured access keys, decide whether the
 * request was signed by the holder of one of those keys, and if not, produce
 * the exact AWS error (exception name and message) an SDK expects.
 *
 * The algorithm (AWS General Reference, "Create a signed AWS API request"):
 *   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n HASH
 *     URI     the raw path, every byte outside A-Za-z0-9-_.~ and '/'
 *             percent-encoded (upper-case hex). On the raw wire form this is
 *             what non-S3 SDKs produce by encoding an already-encoded path
 *             twice ("/a%20b" signs as "/a%2520b").
 *     QUERY   each parameter percent-decoded then re-encoded, sorted by name
 *             then value, "name=value" joined by '&' (X-Amz-Signature left
 *             out in the presigned form).
 *     HEADERS for each name of SignedHeaders, in that order: "name:values\n",
 *             values of repeated headers joined by ',', each trimmed with
 *             inner runs of spaces collapsed to one.
 *     HASH    hex SHA-256 of the body. We always hash the body we received,
 *             so UNSIGNED-PAYLOAD is not honoured: a signature must cover
 *             the bytes we act on.
 *   string to sign = "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n" hex(SHA256(creq))
 *   key = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, yyyymmdd), region), service),
 *              "aws4_request"); signature = hex(HMAC(key, string to sign)).
 * The signature is compared in constant time.
 *
 * Deviations, on purpose: the region and service of the credential scope are
 * not checked (any region works, so clients configured for us-east-1 or
 * eu-west-1 both do; the AWS suite's "service" vectors verify). Only
 * X-Amz-Date dates a request (the RFC 1123 Date header fallback is not
 * implemented; every SDK sends X-Amz-Date). X-Amz-Security-Token is signed
 * like any header but not checked: FaceLink has no temporary credentials.
 * Paths are not normalised (no dot-segment removal); FaceLink serves "/".
 *
 * Errors (names and texts as AWS JSON services answer them; statuses in
 * core/err.c): no Authorization header and no X-Amz-* query parameters ->
 * MissingAuthenticationTokenException; a malformed Authorization header or
 * missing query parameters -> IncompleteSignatureException; a date outside
 * the skew window, an expired presigned URL, a scope date that disagrees
 * with X-Amz-Date, host not signed, or a wrong signature ->
 * InvalidSignatureException; an unknown access key ->
 * UnrecognizedClientException.
 *
 * Threading: pure functions; no state.
 */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ALGO         "AWS4-HMAC-SHA256"
#define SIG_TEXT_MAX (1u << 20) /* canonical request cap; headers are far smaller */

static const char msg_mismatch[] =
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details.";

/* ============================== Encoding ============================== */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Append p[0..n) URI-encoded to b; '/' kept when keep_slash. */
static enum fl_status uri_encode(struct fl_buf *b, const char *p, size_t n, bool keep_slash,
                                 struct fl_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        enum fl_status st;
        if (unreserved(c) || (keep_slash && c == '/')) {
            st = fl_buf_append(b, &p[i], 1, err);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            st = fl_buf_append(b, e, 3, err);
        }
        if (st != FL_OK)
            return st;
    }
    return FL_OK;
}

/* Percent-decode p[0..n) into a fresh string (a malformed escape is kept
 * literally, as AWS does). NULL on allocation failure. */
static char *pct_decode(const char *p, size_t n)
{
    char *o = fl_malloc(n + 1);
    size_t k = 0;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n && fl_hex_digit(p[i + 1]) >= 0 && fl_hex_digit(p[i + 2]) >= 0) {
            o[k++] = (char)(fl_hex_digit(p[i + 1]) * 16 + fl_hex_digit(p[i + 2]));
            i += 2;
        } else {
            o[k++] = p[i];
        }
    }
    o[k] = '\0';
    return o;
}

/* ============================ Query parsing ============================ */

struct qparam {
    char *name;          /* decoded, owned */
    char *value;         /* decoded, owned */
    char *enc;           /* "name=value" re-encoded, owned */
    size_t name_enc_len; /* length of the encoded name inside enc */
};

struct query {
    struct qparam *v; /* owned */
    size_t n;
};

static void query_fini(struct query *q)
{
    for (size_t i = 0; i < q->n; i++) {
        fl_free(q->v[i].name);
        fl_free(q->v[i].value);
        fl_free(q->v[i].enc);
    }
    fl_free(q->v);
    q->v = NULL;
    q->n = 0;
}

/* Split a raw query string into decoded parameters (empty pieces skipped). */
static enum fl_status query_parse(const char *raw, struct query *q, struct fl_err *err)
{
    size_t n = 1;
    q->v = NULL;
    q->n = 0;
    if (!raw || !*raw)
        return FL_OK;
    for (const char *s = raw; *s; s++)
        n += *s == '&';
    q->v = fl_calloc(n, sizeof(*q->v));
    if (!q->v)
        return fl_err_set(err, FL_ERR_NOMEM, "sigv4: out of memory");
    const char *s = raw;
    while (*s) {
        const char *e = strchr(s, '&');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len > 0) {
            const char *eq = memchr(s, '=', len);
            size_t nlen = eq ? (size_t)(eq - s) : len;
            struct qparam *p = &q->v[q->n++];
            struct fl_buf b;
            p->name = pct_decode(s, nlen);
            p->value = eq ? pct_decode(eq + 1, len - nlen - 1) : fl_strdup("");
            if (!p->name || !p->value)
                return fl_err_set(err, FL_ERR_NOMEM, "sigv4: out of memory");
            enum fl_status st;
            fl_buf_init(&b, SIG_TEXT_MAX);
            st = uri_encode(&b, p->name, strlen(p->name), false, err);
            p->name_enc_len = b.len;
            if (st == FL_OK)
                st = fl_buf_append(&b, "=", 1, err);
            if (st == FL_OK)
                st = uri_encode(&b, p->value, strlen(p->value), false, err);
            if (st != FL_OK) {
                fl_buf_fini(&b);
                return st;
            }
            p->enc = fl_buf_take(&b, NULL);
            if (!p->enc)
                p->enc = fl_strdup("=");
            if (!p->enc)
                return fl_err_set(err, FL_ERR_NOMEM, "sigv4: out of memory");
        }
        s += len;
        if (*s == '&')
            s++;
    }
    return FL_OK;
}

static const char *query_get(const struct query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->v[i].name, name) == 0)
            return q->v[i].value;
    return NULL;
}

/* Sort by encoded name, then by encoded value. */
static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    size_t n = FL_MIN(x->name_enc_len, y->name_enc_len);
    int c = memcmp(x->enc, y->enc, n);
    if (c)
        return c;
    if (x->name_enc_len != y->name_enc_len)
        return x->name_enc_len < y->name_enc_len ? -1 : 1;
    return strcmp(x->enc + x->name_enc_len + 1, y->enc + y->name_enc_len + 1);
}

/* =========================== Canonical request =========================== */

/* Append the canonical value of header `name` (len bytes): every value of
 * that header in order, trimmed, runs of spaces collapsed, joined by ','. */
static enum fl_status append_header_values(struct fl_buf *b, const struct fl__sigv4_req *r,
                                           const char *name, size_t len, struct fl_err *err)
{
    bool first = true;
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *hn = r->headers[i].name;
        if (strlen(hn) != len || strncasecmp(hn, name, len) != 0)
            continue;
        enum fl_status st;
        if (!first && (st = fl_buf_append(b, ",", 1, err)) != FL_OK)
            return st;
        first = false;
        const char *v = r->headers[i].value ? r->headers[i].value : "";
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        bool in_space = false;
        for (size_t k = 0; k < vl; k++) {
            bool sp = v[k] == ' ' || v[k] == '\t';
            if (sp && in_space)
                continue;
            in_space = sp;
            st = fl_buf_append(b, sp ? " " : &v[k], 1, err);
            if (st != FL_OK)
                return st;
        }
    }
    return FL_OK;
}

enum fl_status fl__sigv4_canonical_request(const struct fl__sigv4_req *r,
                                           const char *signed_headers, const char *payload_hash_hex,
                                           bool skip_signature, char **out, struct fl_err *err)
{
    enum fl_status st;
    struct fl_buf b;
    struct query q = {0};
    fl_buf_init(&b, SIG_TEXT_MAX);

    st = fl_buf_printf(&b, err, "%s\n", r->method);
    if (st != FL_OK)
        goto out;
    const char *path = r->raw_path && *r->raw_path ? r->raw_path : "/";
    st = uri_encode(&b, path, strlen(path), true, err);
    if (st == FL_OK)
        st = fl_buf_append(&b, "\n", 1, err);
    if (st != FL_OK)
        goto out;

    st = query_parse(r->raw_query, &q, err);
    if (st != FL_OK)
        goto out;
    if (q.n > 1)
        qsort(q.v, q.n, sizeof(*q.v), qparam_cmp);
    bool first = true;
    for (size_t i = 0; i < q.n; i++) {
        if (skip_signature && strcmp(q.v[i].name, "X-Amz-Signature") == 0)
            continue;
        if (!first && (st = fl_buf_append(&b, "&", 1, err)) != FL_OK)
            goto out;
        first = false;
        st = fl_buf_append(&b, q.v[i].enc, strlen(q.v[i].enc), err);
        if (st != FL_OK)
            goto out;
    }
    st = fl_buf_append(&b, "\n", 1, err);
    if (st != FL_OK)
        goto out;

    for (const char *s = signed_headers; *s;) {
        const char *e = strchr(s, ';');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        st = fl_buf_append(&b, s, len, err);
        if (st == FL_OK)
            st = fl_buf_append(&b, ":", 1, err);
        if (st == FL_OK)
            st = append_header_values(&b, r, s, len, err);
        if (st == FL_OK)
            st = fl_buf_append(&b, "\n", 1, err);
        if (st != FL_OK)
            goto out;
        s += len;
        if (*s == ';')
            s++;
    }
    st = fl_buf_printf(&b, err, "\n%s\n%s", signed_headers, payload_hash_hex);
    if (st != FL_OK)
        goto out;
    *out = fl_buf_take(&b, NULL);
out:
    query_fini(&q);
    fl_buf_fini(&b);
    return st;
}

enum fl_status fl__sigv4_string_to_sign(const char *amz_date, const char *scope,
                                        const char *canonical_request, char **out,
                                        struct fl_err *err)
{
    char h[65];
    struct fl_buf b;
    enum fl_status st;
    fl_sha256_hex(canonical_request, strlen(canonical_request), h);
    fl_buf_init(&b, SIG_TEXT_MAX);
    st = fl_buf_printf(&b, err, ALGO "\n%s\n%s\n%s", amz_date, scope, h);
    if (st == FL_OK)
        *out = fl_buf_take(&b, NULL);
    fl_buf_fini(&b);
    return st;
}

void fl__sigv4_signature(const char *secret, const char *date8, const char *region,
                         const char *service, const char *sts, char out[65])
{
    uint8_t k[32], k2[32];
    size_t sl = strlen(secret);
    char *first = fl_malloc(sl + 5);
    /* "AWS4" + secret; a failed allocation falls back to a key that cannot
     * match (all zero), so a verification fails rather than crashes. */
    if (first) {
        memcpy(first, "AWS4", 4);
        memcpy(first + 4, secret, sl + 1);
        fl_hmac_sha256(first, sl + 4, date8, strlen(date8), k);
        memset(first, 0, sl + 4);
        fl_free(first);
    } else {
        memset(k, 0, sizeof(k));
    }
    fl_hmac_sha256(k, 32, region, strlen(region), k2);
    fl_hmac_sha256(k2, 32, service, strlen(service), k);
    fl_hmac_sha256(k, 32, "aws4_request", 12, k2);
    fl_hmac_sha256(k2, 32, sts, strlen(sts), k);
    fl_hex(k, 32, out);
    memset(k2, 0, sizeof(k2));
}

/* ================================ Dates ================================ */

bool fl__sigv4_parse_date(const char *s, double *out)
{
    int v[6];
    static const int w[6] = {4, 2, 2, 2, 2, 2};
    static const int pos[6] = {0, 4, 6, 9, 11, 13};
    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return false;
    for (int f = 0; f < 6; f++) {
        v[f] = 0;
        for (int i = 0; i < w[f]; i++) {
            char c = s[pos[f] + i];
            if (c < '0' || c > '9')
                return false;
            v[f] = v[f] * 10 + (c - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return false;
    /* days from civil (Howard Hinnant's algorithm), UTC without timegm() */
    int y = v[0] - (v[1] <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int mp = (v[1] + 9) % 12;
    int doy = (153 * mp + 2) / 5 + v[2] - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long days = (long)era * 146097 + doe - 719468;
    *out = (double)days * 86400.0 + v[3] * 3600.0 + v[4] * 60.0 + v[5];
    return true;
}

void fl__sigv4_format_date(double t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

bool fl__sigv4_read_only_op(const char *op)
{
    static const char *const prefixes[] = {"Describe", "List",    "Search",
                                           "Detect",   "Compare", "Get"};
    if (!op)
        return false;
    for (size_t i = 0; i < FL_ARRAY_LEN(prefixes); i++)
        if (strncmp(op, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* ============================== Verification ============================== */

static const char *header_get(const struct fl__sigv4_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* Constant-time comparison of two NUL-terminated hex strings; the length
 * difference leaks, which is public (64 for every valid signature). */
static bool ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    volatile unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* Parsed authentication parameters (header or query form). */
struct auth_params {
    char *credential;     /* owned: "AKID/date/region/service/aws4_request" */
    char *signed_headers; /* owned */
    char *signature;      /* owned */
    const char *amz_date; /* borrowed */
    long expires_s;       /* presigned X-Amz-Expires, -1 if absent */
    bool presigned;
};

static void auth_params_fini(struct auth_params *a)
{
    fl_free(a->credential);
    fl_free(a->signed_headers);
    fl_free(a->signature);
}

/* Copy the value of "Key=value" from an Authorization parameter list
 * (comma- and/or space-separated) into *out; *out stays NULL if absent.
 * FL_ERR_NOMEM if the copy fails (distinct from absent: an allocation
 * failure must not read as a malformed signature). */
static enum fl_status auth_param(const char *list, const char *key, char **out, struct fl_err *err)
{
    size_t kl = strlen(key);
    const char *s = list;
    *out = NULL;
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        const char *e = s;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - s) > kl && strncmp(s, key, kl) == 0 && s[kl] == '=') {
            *out = fl_strndup(s + kl + 1, (size_t)(e - s) - kl - 1);
            return *out ? FL_OK : fl_err_set(err, FL_ERR_NOMEM, "sigv4: out of memory");
        }
        s = e;
    }
    return FL_OK;
}

static enum fl_status parse_header_form(const char *authz, const struct fl__sigv4_req *r,
                                        struct auth_params *a, struct fl_err *err)
{
    size_t al = strlen(ALGO);
    if (strncmp(authz, ALGO, al) != 0 || (authz[al] != ' ' && authz[al] != '\0')) {
        const char *sp = strchr(authz, ' ');
        size_t n = sp ? (size_t)(sp - authz) : strlen(authz);
        if (n > 0 && strncmp(authz, "AWS4-", 5) == 0)
            return fl_err_set(err, FL_ERR_AUTH_INCOMPLETE, "Unsupported AWS 'algorithm': '%.*s'",
                              (int)FL_MIN(n, 64), authz);
    }
    const char *params = strncmp(authz, ALGO, al) == 0 ? authz + al : "";
    enum fl_status st = auth_param(params, "Credential", &a->credential, err);
    if (st == FL_OK)
        st = auth_param(params, "SignedHeaders", &a->signed_headers, err);
    if (st == FL_OK)
        st = auth_param(params, "Signature", &a->signature, err);
    if (st != FL_OK)
        return st;
    a->amz_date = header_get(r, "X-Amz-Date");
    a->expires_s = -1;
    if (!a->credential || !a->signed_headers || !a->signature || !a->amz_date || !*params) {
        char m[FL_ERR_MSG_MAX] = "";
        size_t k = 0;
        if (!*params || !a->credential)
            k += (size_t)snprintf(m + k, sizeof(m) - k,
                                  "Authorization header requires 'Credential' parameter. ");
        if (k < sizeof(m) && (!*params || !a->signature))
            k += (size_t)snprintf(m + k, sizeof(m) - k,
                                  "Authorization header requires 'Signature' parameter. ");
        if (k < sizeof(m) && (!*params || !a->signed_headers))
            k += (size_t)snprintf(m + k, sizeof(m) - k,
                                  "Authorization header requires 'SignedHeaders' parameter. ");
        if (k < sizeof(m) && !a->amz_date)
            k += (size_t)snprintf(m + k, sizeof(m) - k,
                                  "Authorization header requires existence of either a "
                                  "'X-Amz-Date' or a 'Date' header. ");
        if (k < sizeof(m))
            snprintf(m + k, sizeof(m) - k, "Authorization=%s", authz);
        return fl_err_set(err, FL_ERR_AUTH_INCOMPLETE, "%s", m);
    }
    return FL_OK;
}

static enum fl_status parse_query_form(const struct query *q, struct auth_params *a,
                                       struct fl_err *err)
{
    static const char *const need[] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature",
                                       "X-Amz-SignedHeaders", "X-Amz-Date"};
    char m[FL_ERR_MSG_MAX] = "AWS query-string parameters must include";
    size_t k = strlen(m);
    bool missing = false;
    for (size_t i = 0; i < FL_ARRAY_LEN(need); i++) {
        if (!query_get(q, need[i])) {
            k += (size_t)snprintf(m + k, sizeof(m) - k, "%s '%s'", missing ? "," : "", need[i]);
            missing = true;
            if (k >= sizeof(m))
                k = sizeof(m) - 1;
        }
    }
    if (missing) {
        snprintf(m + k, sizeof(m) - k, ". Re-examine the query-string parameters.");
        return fl_err_set(err, FL_ERR_AUTH_INCOMPLETE, "%s", m);
    }
    const char *algo = query_get(q, "X-Amz-Algorithm");
    if (strcmp(algo, ALGO) != 0)
        return fl_err_set(err, FL_ERR_AUTH_INCOMPLETE, "Unsupported AWS 'algorithm': '%.64s'",
                          algo);
    a->presigned = true;
    a->credential = fl_strdup(query_get(q, "X-Amz-Credential"));
    a->signed_headers = fl_strdup(query_get(q, "X-Amz-SignedHeaders"));
    a->signature = fl_strdup(query_get(q, "X-Amz-Signature"));
    a->amz_date = query_get(q, "X-Amz-Date");
    a->expires_s = -1;
    if (!a->credential || !a->signed_headers || !a->signature)
        return fl_err_set(err, FL_ERR_NOMEM, "sigv4: out of memory");
    const char *ex = query_get(q, "X-Amz-Expires");
    if (ex) {
        char *end = NULL;
        long v = strtol(ex, &end, 10);
        if (!*ex || *end || v < 0)
            return fl_err_set(err, FL_ERR_AUTH_INCOMPLETE,
                              "X-Amz-Expires must be non-negative integer, got '%.32s'", ex);
        if (v > 604800)
            return fl_err_set(err, FL_ERR_AUTH_INCOMPLETE,
                              "X-Amz-Expires must be less than a week (in seconds) that is "
                              "604800");
        a->expires_s = v;
    }
    return FL_OK;
}

/* True if the ';'-separated list contains name exactly. */
static bool list_has(const char *list, const char *name)
{
    size_t nl = strlen(name);
    for (const char *s = list; *s;) {
        const char *e = strchr(s, ';');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == nl && strncmp(s, name, nl) == 0)
            return true;
        s += len;
        if (*s == ';')
            s++;
    }
    return false;
}

enum fl_status fl__sigv4_verify(const struct fl__sigv4_req *r, const struct fl__keyring *keys,
                                double now, int max_skew_s, struct fl__sigv4_auth *out,
                                struct fl_err *err)
{
    enum fl_status st;
    struct auth_params a = {0};
    struct query q = {0};
    char *creq = NULL, *sts = NULL;
    char *cred_parts[5] = {0};
    char *cred_copy = NULL;
    const struct fl_server_key *key = NULL;

    const char *authz = header_get(r, "Authorization");
    st = query_parse(r->raw_query, &q, err);
    if (st != FL_OK)
        goto out;
    if (authz) {
        st = parse_header_form(authz, r, &a, err);
    } else if (query_get(&q, "X-Amz-Algorithm") || query_get(&q, "X-Amz-Credential") ||
               query_get(&q, "X-Amz-Signature")) {
        st = parse_query_form(&q, &a, err);
    } else {
        st = fl_err_set(err, FL_ERR_AUTH_MISSING, "Missing Authentication Token");
    }
    if (st != FL_OK)
        goto out;

    /* Credential = AKID/yyyymmdd/region/service/aws4_request */
    cred_copy = fl_strdup(a.credential);
    if (!cred_copy) {
        st = fl_err_set(err, FL_ERR_NOMEM, "sigv4: out of memory");
        goto out;
    }
    {
        int n = 0;
        char *s = cred_copy;
        cred_parts[n++] = s;
        for (; *s; s++) {
            if (*s == '/') {
                *s = '\0';
                if (n == 5) {
                    n = 6;
                    break;
                }
                cred_parts[n++] = s + 1;
            }
        }
        if (n != 5 || !*cred_parts[0]) {
            st = fl_err_set(err, FL_ERR_AUTH_INCOMPLETE,
                            "Credential should be scoped to a valid region, not a malformed "
                            "Credential '%.128s'. ",
                            a.credential);
            goto out;
        }
        if (strcmp(cred_parts[4], "aws4_request") != 0) {
            st = fl_err_set(err, FL_ERR_AUTH_INCOMPLETE,
                            "Credential should be scoped with a valid terminator: "
                            "'aws4_request', not '%.64s'. ",
                            cred_parts[4]);
            goto out;
        }
    }

    double t_req;
    if (!fl__sigv4_parse_date(a.amz_date, &t_req)) {
        st = fl_err_set(err, FL_ERR_AUTH_INCOMPLETE,
                        "Date must be in ISO-8601 'basic format'. Got '%.64s'. See "
                        "http://en.wikipedia.org/wiki/ISO_8601",
                        a.amz_date);
        goto out;
    }
    {
        char d_now[17], d_lo[17], d_hi[17];
        fl__sigv4_format_date(now, d_now);
        if (a.presigned && a.expires_s >= 0 && now > t_req + (double)a.expires_s) {
            char d_exp[17];
            fl__sigv4_format_date(t_req + (double)a.expires_s, d_exp);
            st = fl_err_set(err, FL_ERR_AUTH_SIGNATURE,
                            "Signature expired: %s is now earlier than %s (expires %s after "
                            "%ld s).",
                            d_exp, d_now, a.amz_date, a.expires_s);
            goto out;
        }
        if (!(a.presigned && a.expires_s >= 0) && t_req < now - max_skew_s) {
            fl__sigv4_format_date(now - max_skew_s, d_lo);
            st = fl_err_set(err, FL_ERR_AUTH_SIGNATURE,
                            "Signature expired: %s is now earlier than %s (%s - %d min.)",
                            a.amz_date, d_lo, d_now, max_skew_s / 60);
            goto out;
        }
        if (t_req > now + max_skew_s) {
            fl__sigv4_format_date(now + max_skew_s, d_hi);
            st = fl_err_set(err, FL_ERR_AUTH_SIGNATURE,
                            "Signature not yet current: %s is still later than %s (%s + %d "
                            "min.)",
                            a.amz_date, d_hi, d_now, max_skew_s / 60);
            goto out;
        }
    }
    if (strncmp(cred_parts[1], a.amz_date, 8) != 0 || strlen(cred_parts[1]) != 8) {
        st = fl_err_set(err, FL_ERR_AUTH_SIGNATURE,
                        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                        "of date from HTTP: '%.16s' != '%.8s', from '%s'.",
                        cred_parts[1], a.amz_date, a.amz_date);
        goto out;
    }

    for (size_t i = 0; keys && i < keys->n_keys; i++) {
        if (strcmp(keys->keys[i].access_key_id, cred_parts[0]) == 0) {
            key = &keys->keys[i];
            break;
        }
    }
    if (!key) {
        st = fl_err_set(err, FL_ERR_AUTH_UNKNOWN_KEY,
                        "The security token included in the request is invalid.");
        goto out;
    }
    if (!list_has(a.signed_headers, "host")) {
        st = fl_err_set(err, FL_ERR_AUTH_SIGNATURE,
                        "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                        "Authorization.");
        goto out;
    }

    {
        char body_hash[65], sig[65];
        const char *scope = a.credential + strlen(cred_parts[0]) + 1;
        fl_sha256_hex(r->body ? r->body : "", r->body_len, body_hash);
        st = fl__sigv4_canonical_request(r, a.signed_headers, body_hash, a.presigned, &creq, err);
        if (st != FL_OK)
            goto out;
        st = fl__sigv4_string_to_sign(a.amz_date, scope, creq, &sts, err);
        if (st != FL_OK)
            goto out;
        fl__sigv4_signature(key->secret, cred_parts[1], cred_parts[2], cred_parts[3], sts, sig);
        if (!ct_equal(sig, a.signature)) {
            st = fl_err_set(err, FL_ERR_AUTH_SIGNATURE, "%s", msg_mismatch);
            goto out;
        }
    }
    snprintf(out->access_key_id, sizeof(out->access_key_id), "%s", key->access_key_id);
    out->read_only = key->read_only;
    st = FL_OK;
out:
    fl_free(creq);
    fl_free(sts);
    fl_free(cred_copy);
    auth_params_fini(&a);
    query_fini(&q);
    return st;
}
