/* test_sigv4.c: SigV4 verification against AWS's published test suite
 * (aws-sig-v4-test-suite, 2015-08-30 vectors: key AKIDEXAMPLE, region
 * us-east-1, service "service"), plus every rejection path and its AWS error.
 *
 * The expected canonical requests, string-to-sign hashes and signatures below
 * are the suite's published .creq/.sts/.authz values, not outputs of our code. */
#include "t.h"
#include "server/server_int.h"

T_MAIN_STATE;

#define AKID      "AKIDEXAMPLE"
#define SECRET    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define DATE      "20150830T123600Z"
#define SCOPE     "20150830/us-east-1/service/aws4_request"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const struct fl_server_key test_keys[] = {
    {.access_key_id = AKID, .secret = SECRET, .read_only = false},
    {.access_key_id = "AKIDREADONLY", .secret = "ro-secret", .read_only = true},
};
static const struct fl__keyring ring = {test_keys, 2};

struct vec {
    const char *name;
    const char *method;
    const char *path;  /* raw, as on the request line */
    const char *query; /* raw, after '?' */
    const char *extra_headers[4][2];
    const char *body;
    const char *signed_headers;
    const char *creq;      /* published canonical request, or NULL */
    const char *sts_hash;  /* last line of the published string to sign, or NULL */
    const char *signature; /* published signature, or NULL */
};

/* clang-format off */
static const struct vec vecs[] = {
    {"get-vanilla", "GET", "/", NULL, {{0}}, "", "host;x-amz-date",
     "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     NULL, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"post-vanilla", "POST", "/", NULL, {{0}}, "", "host;x-amz-date",
     "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     NULL, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", {{0}}, "",
     "host;x-amz-date",
     "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-empty-query-key", "GET", "/", "Param1=value1", {{0}}, "", "host;x-amz-date",
     NULL, NULL, "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-query-order-encoded", "GET", "/", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
     {{0}}, "", "host;x-amz-date",
     "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71", NULL},
    {"post-x-www-form-urlencoded", "POST", "/", NULL,
     {{"Content-Type", "application/x-www-form-urlencoded"}}, "Param1=value1",
     "content-type;host;x-amz-date",
     "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"post-x-www-form-urlencoded-parameters", "POST", "/", NULL,
     {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}}, "Param1=value1",
     "content-type;host;x-amz-date", NULL, NULL,
     "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
    {"get-header-value-trim", "GET", "/", NULL,
     {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}, "",
     "host;my-header1;my-header2;x-amz-date",
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA,
     "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"get-header-key-duplicate", "GET", "/", NULL,
     {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}, "",
     "host;my-header1;x-amz-date",
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY_SHA,
     "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-utf8", "GET", "/\xe1\x88\xb4", NULL, {{0}}, "", "host;x-amz-date",
     "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     NULL, {{0}}, "", "host;x-amz-date", NULL, NULL,
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
};
/* clang-format on */

/* A request under test: headers array with storage. */
struct treq {
    struct fl__kv h[12];
    char authz[512];
    struct fl__sigv4_req r;
};

/* Build the request of vector v; authorization header from signature sig
 * (NULL: no Authorization header). */
static void build(struct treq *t, const struct vec *v, const char *sig)
{
    size_t n = 0;
    memset(t, 0, sizeof(*t));
    t->h[n++] = (struct fl__kv){"Host", "example.amazonaws.com"};
    for (int i = 0; i < 4 && v->extra_headers[i][0]; i++)
        t->h[n++] = (struct fl__kv){v->extra_headers[i][0], v->extra_headers[i][1]};
    t->h[n++] = (struct fl__kv){"X-Amz-Date", DATE};
    if (sig) {
        snprintf(t->authz, sizeof(t->authz),
                 "AWS4-HMAC-SHA256 Credential=" AKID "/" SCOPE ", SignedHeaders=%s, Signature=%s",
                 v->signed_headers, sig);
        t->h[n++] = (struct fl__kv){"Authorization", t->authz};
    }
    t->r.method = v->method;
    t->r.raw_path = v->path;
    t->r.raw_query = v->query;
    t->r.headers = t->h;
    t->r.n_headers = n;
    t->r.body = v->body;
    t->r.body_len = strlen(v->body);
}

static double t_vec(void)
{
    double t = 0;
    fl__sigv4_parse_date(DATE, &t);
    return t;
}

static void test_parse_date(void)
{
    double t = 0;
    T_REQUIRE(fl__sigv4_parse_date("20150830T123600Z", &t));
    T_CHECK_NEAR(t, 1440938160.0, 0); /* date -u -d 2015-08-30T12:36:00Z +%s */
    T_CHECK(fl__sigv4_parse_date("19700101T000000Z", &t) && t == 0);
    T_CHECK(!fl__sigv4_parse_date("2015-08-30T12:36:00Z", &t));
    T_CHECK(!fl__sigv4_parse_date("20151330T123600Z", &t));
    T_CHECK(!fl__sigv4_parse_date("20150830T123600", &t));
    char s[17];
    fl__sigv4_format_date(1440938160.0, s);
    T_CHECK_EQ_STR(s, "20150830T123600Z");
}

/* Canonical request, string to sign and signature of each published vector. */
static void test_suite_vectors(void)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(vecs); i++) {
        const struct vec *v = &vecs[i];
        struct treq t;
        char *creq = NULL, *sts = NULL;
        char body_hash[65], sig[65], h[65];
        struct fl_err err;
        build(&t, v, NULL);
        fl_sha256_hex(v->body, strlen(v->body), body_hash);
        T_CHECK_EQ_INT(
            fl__sigv4_canonical_request(&t.r, v->signed_headers, body_hash, false, &creq, &err),
            FL_OK);
        T_REQUIRE(creq != NULL);
        if (v->creq && strcmp(creq, v->creq) != 0) {
            printf("# %s: canonical request differs:\n%s\n", v->name, creq);
            t_g.cur_failed++;
        }
        T_CHECK_EQ_INT(fl__sigv4_string_to_sign(DATE, SCOPE, creq, &sts, &err), FL_OK);
        T_REQUIRE(sts != NULL);
        fl_sha256_hex(creq, strlen(creq), h);
        T_CHECK(strncmp(sts, "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n",
                        17 + 17 + strlen(SCOPE) + 1) == 0);
        if (v->sts_hash && strcmp(h, v->sts_hash) != 0) {
            printf("# %s: string-to-sign hash %s, want %s\n", v->name, h, v->sts_hash);
            t_g.cur_failed++;
        }
        if (v->signature) {
            fl__sigv4_signature(SECRET, "20150830", "us-east-1", "service", sts, sig);
            if (strcmp(sig, v->signature) != 0) {
                printf("# %s: signature %s, want %s\n", v->name, sig, v->signature);
                t_g.cur_failed++;
            }
        }
        fl_free(creq);
        fl_free(sts);
    }
}

/* The verifier accepts every published signed request and rejects each with
 * one signature character changed. */
static void test_verify_vectors(void)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(vecs); i++) {
        const struct vec *v = &vecs[i];
        struct treq t;
        struct fl__sigv4_auth auth;
        struct fl_err err;
        char bad[65];
        if (!v->signature)
            continue;
        build(&t, v, v->signature);
        enum fl_status st = fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err);
        if (st != FL_OK) {
            printf("# %s: rejected: %s\n", v->name, err.msg);
            t_g.cur_failed++;
            continue;
        }
        T_CHECK_EQ_STR(auth.access_key_id, AKID);
        T_CHECK(!auth.read_only);
        snprintf(bad, sizeof(bad), "%s", v->signature);
        bad[10] = bad[10] == '0' ? '1' : '0';
        build(&t, v, bad);
        T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err),
                       FL_ERR_AUTH_SIGNATURE);
        T_CHECK(strncmp(err.msg, "The request signature we calculated does not match", 50) == 0);
    }
}

/* A changed body or a changed signed header breaks the signature. */
static void test_tamper(void)
{
    const struct vec *v = &vecs[5]; /* post-x-www-form-urlencoded */
    struct treq t;
    struct fl__sigv4_auth auth;
    struct fl_err err;
    T_REQUIRE(strcmp(v->name, "post-x-www-form-urlencoded") == 0);
    build(&t, v, v->signature);
    t.r.body = "Param1=value2";
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err), FL_ERR_AUTH_SIGNATURE);
    build(&t, v, v->signature);
    t.h[1].value = "application/json";
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err), FL_ERR_AUTH_SIGNATURE);
    /* an unsigned header may change freely */
    build(&t, v, v->signature);
    t.h[t.r.n_headers++] = (struct fl__kv){"User-Agent", "anything"};
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err), FL_OK);
}

static void test_missing_and_incomplete(void)
{
    struct treq t;
    struct fl__sigv4_auth auth;
    struct fl_err err;
    build(&t, &vecs[0], NULL);
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err), FL_ERR_AUTH_MISSING);
    T_CHECK_EQ_STR(err.msg, "Missing Authentication Token");
    T_CHECK_EQ_STR(fl_status_exception(FL_ERR_AUTH_MISSING), "MissingAuthenticationTokenException");

    build(&t, &vecs[0], "x");
    t.h[t.r.n_headers - 1].value = "foo";
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err),
                   FL_ERR_AUTH_INCOMPLETE);
    T_CHECK(strstr(err.msg, "Authorization header requires 'Credential' parameter.") != NULL);
    T_CHECK(strstr(err.msg, "Authorization=foo") != NULL);

    build(&t, &vecs[0], "x");
    t.h[t.r.n_headers - 1].value =
        "AWS4-HMAC-SHA256 Credential=" AKID "/" SCOPE ", SignedHeaders=host;x-amz-date";
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err),
                   FL_ERR_AUTH_INCOMPLETE);
    T_CHECK(strstr(err.msg, "requires 'Signature' parameter") != NULL);
    T_CHECK(strstr(err.msg, "'Credential'") == NULL);

    build(&t, &vecs[0], vecs[0].signature);
    t.h[1] = (struct fl__kv){"X-Other", "1"}; /* drop X-Amz-Date */
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err),
                   FL_ERR_AUTH_INCOMPLETE);
    T_CHECK(strstr(err.msg, "'X-Amz-Date' or a 'Date' header") != NULL);

    build(&t, &vecs[0], "x");
    t.h[t.r.n_headers - 1].value = "AWS4-HMAC-SHA512 Credential=a/b/c/d/aws4_request";
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err),
                   FL_ERR_AUTH_INCOMPLETE);
    T_CHECK(strstr(err.msg, "Unsupported AWS 'algorithm'") != NULL);

    build(&t, &vecs[0], "x");
    t.h[t.r.n_headers - 1].value =
        "AWS4-HMAC-SHA256 Credential=" AKID "/20150830/us-east-1/service/aws5_request, "
        "SignedHeaders=host;x-amz-date, Signature=00";
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err),
                   FL_ERR_AUTH_INCOMPLETE);
    T_CHECK(strstr(err.msg, "valid terminator: 'aws4_request', not 'aws5_request'") != NULL);
}

static void test_unknown_key(void)
{
    struct treq t;
    struct fl__sigv4_auth auth;
    struct fl_err err;
    build(&t, &vecs[0], vecs[0].signature);
    struct fl_server_key other = {.access_key_id = "AKIDOTHER", .secret = SECRET};
    struct fl__keyring r2 = {&other, 1};
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &r2, t_vec(), 900, &auth, &err), FL_ERR_AUTH_UNKNOWN_KEY);
    T_CHECK_EQ_STR(err.msg, "The security token included in the request is invalid.");
    T_CHECK_EQ_STR(fl_status_exception(FL_ERR_AUTH_UNKNOWN_KEY), "UnrecognizedClientException");
    /* The same request against the right secret under another id is refused too. */
    struct fl__keyring r0 = {NULL, 0};
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &r0, t_vec(), 900, &auth, &err), FL_ERR_AUTH_UNKNOWN_KEY);
}

/* Clock skew: AWS's own message format ("Signature expired: X is now earlier
 * than Y (Z - 15 min.)"). */
static void test_skew(void)
{
    struct treq t;
    struct fl__sigv4_auth auth;
    struct fl_err err;
    build(&t, &vecs[0], vecs[0].signature);
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec() + 899, 900, &auth, &err), FL_OK);
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec() - 899, 900, &auth, &err), FL_OK);
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec() + 960, 900, &auth, &err),
                   FL_ERR_AUTH_SIGNATURE);
    T_CHECK_EQ_STR(err.msg, "Signature expired: 20150830T123600Z is now earlier than "
                            "20150830T123700Z (20150830T125200Z - 15 min.)");
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec() - 960, 900, &auth, &err),
                   FL_ERR_AUTH_SIGNATURE);
    T_CHECK_EQ_STR(err.msg, "Signature not yet current: 20150830T123600Z is still later than "
                            "20150830T123500Z (20150830T122000Z + 15 min.)");
}

static void test_scope_date_and_host(void)
{
    struct treq t;
    struct fl__sigv4_auth auth;
    struct fl_err err;
    build(&t, &vecs[0], "x");
    t.h[t.r.n_headers - 1].value =
        "AWS4-HMAC-SHA256 Credential=" AKID "/20150831/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00";
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err), FL_ERR_AUTH_SIGNATURE);
    T_CHECK(strstr(err.msg, "Date in Credential scope does not match") != NULL);

    build(&t, &vecs[0], "x");
    t.h[t.r.n_headers - 1].value =
        "AWS4-HMAC-SHA256 Credential=" AKID "/" SCOPE ", SignedHeaders=x-amz-date, Signature=00";
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err), FL_ERR_AUTH_SIGNATURE);
    T_CHECK(strstr(err.msg, "'Host'") != NULL);
}

/* Presigned query form: X-Amz-* parameters instead of the header. The
 * signature here is computed with the suite-verified primitives for a query
 * whose canonical form we write out independently. */
static void test_presigned(void)
{
    const char *q_unsigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F"
                             "20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date="
                             "20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host";
    const char *creq = "GET\n/\n"
                       "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%"
                       "2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-"
                       "Expires=60&X-Amz-SignedHeaders=host\n"
                       "host:example.amazonaws.com\n\nhost\n" EMPTY_SHA;
    char *sts = NULL, sig[65], query[1024];
    struct fl_err err;
    struct fl__sigv4_auth auth;
    T_REQUIRE(fl__sigv4_string_to_sign(DATE, SCOPE, creq, &sts, &err) == FL_OK);
    fl__sigv4_signature(SECRET, "20150830", "us-east-1", "service", sts, sig);
    fl_free(sts);
    /* the signature parameter first: order must not matter */
    snprintf(query, sizeof(query), "X-Amz-Signature=%s&%s", sig, q_unsigned);
    struct fl__kv h[] = {{"Host", "example.amazonaws.com"}};
    struct fl__sigv4_req r = {"GET", "/", query, h, 1, "", 0};
    T_CHECK_EQ_INT(fl__sigv4_verify(&r, &ring, t_vec() + 30, 900, &auth, &err), FL_OK);
    T_CHECK_EQ_STR(auth.access_key_id, AKID);
    /* past X-Amz-Expires */
    T_CHECK_EQ_INT(fl__sigv4_verify(&r, &ring, t_vec() + 61, 900, &auth, &err),
                   FL_ERR_AUTH_SIGNATURE);
    T_CHECK(strncmp(err.msg, "Signature expired", 17) == 0);
    /* a tampered parameter */
    snprintf(query, sizeof(query), "X-Amz-Signature=%s&%s&Extra=1", sig, q_unsigned);
    r.raw_query = query;
    T_CHECK_EQ_INT(fl__sigv4_verify(&r, &ring, t_vec(), 900, &auth, &err), FL_ERR_AUTH_SIGNATURE);
    /* missing parameters */
    r.raw_query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z";
    T_CHECK_EQ_INT(fl__sigv4_verify(&r, &ring, t_vec(), 900, &auth, &err), FL_ERR_AUTH_INCOMPLETE);
    T_CHECK(strstr(err.msg, "'X-Amz-Credential'") != NULL);
    T_CHECK(strstr(err.msg, "'X-Amz-Signature'") != NULL);
}

static void test_read_only_ops(void)
{
    static const char *const ro[] = {"DescribeCollection", "ListFaces",    "SearchFacesByImage",
                                     "DetectFaces",        "CompareFaces", "GetFaceEmbeddings",
                                     "ListCollections",    "SearchUsers"};
    static const char *const rw[] = {
        "IndexFaces", "DeleteFaces",    "CreateCollection", "DeleteCollection",
        "CreateUser", "AssociateFaces", "TagResource",      "ImportFaces",
        "",           "getFoo"};
    for (size_t i = 0; i < FL_ARRAY_LEN(ro); i++)
        T_CHECK(fl__sigv4_read_only_op(ro[i]));
    for (size_t i = 0; i < FL_ARRAY_LEN(rw); i++)
        T_CHECK(!fl__sigv4_read_only_op(rw[i]));
    T_CHECK(!fl__sigv4_read_only_op(NULL));
}

/* A read-only key verifies (authorisation is the server's job) and says so. */
static void test_read_only_key_flag(void)
{
    const struct vec *v = &vecs[0];
    struct fl_server_key k = {.access_key_id = AKID, .secret = SECRET, .read_only = true};
    struct fl__keyring r1 = {&k, 1};
    struct treq t;
    struct fl__sigv4_auth auth;
    struct fl_err err;
    build(&t, v, v->signature);
    T_CHECK_EQ_INT(fl__sigv4_verify(&t.r, &r1, t_vec(), 900, &auth, &err), FL_OK);
    T_CHECK(auth.read_only);
}

/* Every allocation of a verification, failed in turn: the answer is the
 * success or an error (never a crash, never a false accept of a bad request),
 * and nothing leaks. */
static void test_alloc_failures(void)
{
    const struct vec *v = &vecs[5]; /* post-x-www-form-urlencoded: body, headers */
    struct treq t;
    struct fl__sigv4_auth auth;
    struct fl_err err;
    long base = fl_alloc_live();
    int n;
    for (n = 1; n < 1000; n++) {
        build(&t, v, v->signature);
        fl_test_fail_alloc_at(n);
        enum fl_status st = fl__sigv4_verify(&t.r, &ring, t_vec(), 900, &auth, &err);
        long injected = fl_test_injected();
        fl_test_fail_alloc_at(0);
        if (injected == 0) {
            T_CHECK_EQ_INT(st, FL_OK);
            break;
        }
        if (!(st == FL_ERR_NOMEM || st == FL_ERR_AUTH_SIGNATURE || st == FL_ERR_LIMIT)) {
            printf("# fail at %d: status %d: %s\n", n, st, err.msg);
            t_g.cur_failed++;
        }
        T_CHECK_EQ_INT(fl_alloc_live(), base);
    }
    T_CHECK(n > 3 && n < 1000);
}

static void test_no_leaks(void)
{
    T_CHECK_EQ_INT(fl_alloc_live(), 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_parse_date);
    T_RUN(test_suite_vectors);
    T_RUN(test_verify_vectors);
    T_RUN(test_tamper);
    T_RUN(test_missing_and_incomplete);
    T_RUN(test_unknown_key);
    T_RUN(test_skew);
    T_RUN(test_scope_date_and_host);
    T_RUN(test_presigned);
    T_RUN(test_read_only_ops);
    T_RUN(test_read_only_key_flag);
    T_RUN(test_alloc_failures);
    T_RUN(test_no_leaks);
    return t_done();
}
