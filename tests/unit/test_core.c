/* test_core.c: the core layer: status table, allocator and its failure
 * injection, arenas, buffers, base64, UUIDs, hashing, JSON helpers. */
#include "t.h"
#include "core/core.h"

T_MAIN_STATE;

static void test_status_table_complete(void)
{
    for (int s = 0; s < FL_STATUS_COUNT_; s++) {
        T_CHECK(fl_status_name((enum fl_status)s) != NULL);
        T_CHECK(fl_status_exception((enum fl_status)s) != NULL);
        T_CHECK(fl_status_http((enum fl_status)s) >= 200);
    }
    T_CHECK_EQ_STR(fl_status_exception(FL_ERR_INVALID_ARG), "InvalidParameterException");
    T_CHECK_EQ_INT(fl_status_http(FL_ERR_BUSY), 500);
    T_CHECK_EQ_INT(fl_status_http(FL_ERR_NOT_FOUND), 400);
    T_CHECK_EQ_INT(fl_status_http(FL_OK), 200);
}

/* Every Rekognition exception we emit with an HTTP status must match the
 * spec's errors table (name and status). */
static void test_status_table_matches_spec(void)
{
    char path[1024];
    json_t *spec, *errors;
    json_error_t je;
    if (!t_shared("spec/rekognition_face_ops.json", path, sizeof(path)))
        T_SKIP("../shared/spec absent");
    spec = json_load_file(path, 0, &je);
    T_REQUIRE(spec != NULL);
    errors = json_object_get(spec, "errors");
    T_REQUIRE(json_is_object(errors));
    for (int s = 1; s < FL_STATUS_COUNT_; s++) {
        const char *ex = fl_status_exception((enum fl_status)s);
        json_t *e = json_object_get(errors, ex);
        if (!e)
            continue; /* protocol-level errors (Serialization, auth) are not in the model */
        T_CHECK_EQ_INT(fl_status_http((enum fl_status)s),
                       json_integer_value(json_object_get(e, "http_status")));
    }
    /* and the main ones must be spec names */
    T_CHECK(json_object_get(errors, fl_status_exception(FL_ERR_IMAGE_TOO_LARGE)) != NULL);
    T_CHECK(json_object_get(errors, fl_status_exception(FL_ERR_NOT_FOUND)) != NULL);
    T_CHECK(json_object_get(errors, fl_status_exception(FL_ERR_BUSY)) != NULL);
    json_decref(spec);
}

static void test_err_set(void)
{
    struct fl_err e;
    T_CHECK_EQ_INT(fl_err_set(&e, FL_ERR_NOT_FOUND, "collection %s", "x"), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_STR(e.msg, "collection x");
    T_CHECK_EQ_INT(fl_err_set(NULL, FL_ERR_IO, "ignored"), FL_ERR_IO);
    fl_err_clear(&e);
    T_CHECK_EQ_INT(e.code, FL_OK);
}

static void test_alloc_injection(void)
{
    long live = fl_alloc_live();
    void *a, *b, *c;
    fl_test_fail_alloc_at(2);
    a = fl_malloc(10);
    b = fl_malloc(10);
    c = fl_malloc(10);
    T_CHECK(a != NULL);
    T_CHECK(b == NULL);
    T_CHECK(c != NULL);
    T_CHECK_EQ_INT(fl_test_injected(), 1);
    fl_test_fail_alloc_at(0);
    fl_free(a);
    fl_free(c);
    T_CHECK_EQ_INT(fl_alloc_live(), live);
}

static void test_arena(void)
{
    struct fl_arena a;
    double *d;
    char *big;
    void *p64;
    fl_arena_init(&a, 1 << 20);
    d = FL_ARENA_NEW(&a, double, 10);
    T_REQUIRE(d != NULL);
    T_CHECK(((uintptr_t)d % alignof(double)) == 0);
    p64 = fl_arena_alloc(&a, 100, 64);
    T_CHECK(p64 != NULL && ((uintptr_t)p64 % 64) == 0);
    big = FL_ARENA_NEW(&a, char, 2 << 20);
    T_CHECK(big == NULL); /* over cap */
    for (int i = 0; i < 100; i++)
        T_CHECK(fl_arena_alloc(&a, 5000, 8) != NULL);
    fl_arena_reset(&a);
    T_CHECK_EQ_INT(a.used, 0);
    {
        long live = fl_alloc_live();
        for (int i = 0; i < 10; i++)
            T_CHECK(fl_arena_alloc(&a, 1000, 16) != NULL);
        T_CHECK_EQ_INT(fl_alloc_live(), live); /* no malloc after warm-up */
    }
    fl_arena_fini(&a);
}

static void test_arena_torture(void)
{
    for (long n = 1;; n++) {
        struct fl_arena a;
        bool ok = true;
        long live = fl_alloc_live();
        fl_test_fail_alloc_at(n);
        fl_arena_init(&a, 0);
        for (int i = 0; i < 50 && ok; i++)
            ok = fl_arena_alloc(&a, 40000, 8) != NULL;
        fl_arena_fini(&a);
        T_CHECK_EQ_INT(fl_alloc_live(), live);
        if (fl_test_injected() == 0) {
            T_CHECK(ok);
            break;
        }
        T_CHECK(!ok);
    }
    fl_test_fail_alloc_at(0);
}

static void test_buf(void)
{
    struct fl_buf b;
    struct fl_err e;
    size_t len;
    char *s;
    fl_buf_init(&b, 16);
    T_CHECK_EQ_INT(fl_buf_printf(&b, &e, "%d-%s", 42, "ab"), FL_OK);
    T_CHECK_EQ_STR(b.data, "42-ab");
    T_CHECK_EQ_INT(fl_buf_append(&b, "0123456789abcdef", 16, &e), FL_ERR_LIMIT);
    T_CHECK(b.data == NULL); /* a failed append frees */
    T_CHECK_EQ_INT(fl_buf_append(&b, "xyz", 3, &e), FL_OK);
    s = fl_buf_take(&b, &len);
    T_CHECK_EQ_STR(s, "xyz");
    T_CHECK_EQ_INT(len, 3);
    fl_free(s);
    fl_buf_fini(&b);
}

static void test_base64(void)
{
    /* RFC 4648 test vectors */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char out[64];
    uint8_t dec[64];
    size_t n;
    struct fl_err e;
    for (size_t i = 0; i < FL_ARRAY_LEN(plain); i++) {
        fl_base64_encode(plain[i], strlen(plain[i]), out);
        T_CHECK_EQ_STR(out, enc[i]);
        T_CHECK_EQ_INT(fl_base64_decode(enc[i], strlen(enc[i]), dec, &n, &e), FL_OK);
        T_CHECK_EQ_INT(n, strlen(plain[i]));
        T_CHECK(memcmp(dec, plain[i], n) == 0);
    }
    T_CHECK_EQ_INT(fl_base64_decode("Zm9", 3, dec, &n, &e), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_base64_decode("Zm=v", 4, dec, &n, &e), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_base64_decode("Z!9v", 4, dec, &n, &e), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_base64_decode("Zg==Zg==", 8, dec, &n, &e), FL_ERR_INVALID_ARG);
}

static void test_uuid(void)
{
    char a[37], b[37], c[37];
    T_CHECK_EQ_INT(fl_uuid_v4(a, NULL), FL_OK);
    T_CHECK_EQ_INT(fl_uuid_v4(b, NULL), FL_OK);
    T_CHECK(fl_uuid_valid(a));
    T_CHECK(strcmp(a, b) != 0);
    T_CHECK(a[14] == '4');
    /* RFC 4122 appendix / Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") */
    T_CHECK_EQ_INT(fl_uuid_v5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org", 10, c, NULL),
                   FL_OK);
    T_CHECK_EQ_STR(c, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    T_CHECK(!fl_uuid_valid("886313E1-3b8a-5372-9b90-0c9aee199e5d"));
    T_CHECK(!fl_uuid_valid("886313e1-3b8a-5372-9b90-0c9aee199e5"));
    T_CHECK(!fl_uuid_valid("886313e1x3b8a-5372-9b90-0c9aee199e5d"));
}

static void test_sha256_hmac(void)
{
    char hex[65];
    uint8_t mac[32];
    fl_sha256_hex("abc", 3, hex);
    T_CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 4231 test case 2 */
    fl_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
    fl_hex(mac, 32, hex);
    T_CHECK_EQ_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_json(void)
{
    json_t *v = NULL;
    struct fl_err e;
    char *s;
    double d;
    T_CHECK_EQ_INT(fl_json_parse_object("{\"a\":1,\"b\":[true]}", 18, &v, &e), FL_OK);
    T_REQUIRE(v != NULL);
    T_CHECK(fl_json_number(json_object_get(v, "a"), &d) && d == 1.0);
    T_CHECK_EQ_INT(fl_json_dump(v, &s, NULL, &e), FL_OK);
    T_CHECK_EQ_STR(s, "{\"a\":1,\"b\":[true]}");
    fl_free(s);
    json_decref(v);
    T_CHECK_EQ_INT(fl_json_parse_object("{\"a\":", 5, &v, &e), FL_ERR_SERIALIZATION);
    T_CHECK_EQ_INT(fl_json_parse_object("[1]", 3, &v, &e), FL_ERR_SERIALIZATION);
    T_CHECK_EQ_INT(fl_json_parse_object("{\"a\":1,\"a\":2}", 13, &v, &e), FL_ERR_SERIALIZATION);
}

static void test_rng_reproducible(void)
{
    struct fl_rng a, b;
    fl_rng_seed(&a, 7);
    fl_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++)
        T_CHECK(fl_rng_next(&a) == fl_rng_next(&b));
    for (int i = 0; i < 1000; i++) {
        double x = fl_rng_double(&a);
        T_CHECK(x >= 0 && x < 1);
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_status_table_complete);
    T_RUN(test_status_table_matches_spec);
    T_RUN(test_err_set);
    T_RUN(test_alloc_injection);
    T_RUN(test_arena);
    T_RUN(test_arena_torture);
    T_RUN(test_buf);
    T_RUN(test_base64);
    T_RUN(test_uuid);
    T_RUN(test_sha256_hmac);
    T_RUN(test_json);
    T_RUN(test_rng_reproducible);
    return t_done();
}
