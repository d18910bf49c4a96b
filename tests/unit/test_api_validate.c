/* test_api_validate.c: the pattern matcher and the request validator.
 *
 * Patterns are checked against hand-written expectations derived from the
 * regex semantics (Java's Matcher.matches(): whole string), not from the
 * matcher's output. Validation cases state the exception a request must get
 * per REKOGNITION.md (constraint violations -> InvalidParameterException,
 * oversized Image.Bytes -> ImageTooLargeException, ...) and a message
 * fragment naming the member. */
#include "t.h"
#include "api/spec.h"

T_MAIN_STATE;

#define FACE_RE "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

static void test_pattern_basic(void)
{
    T_CHECK_EQ_INT(fl__api_pattern_match("[a-zA-Z0-9_.\\-]+", "my-coll_1.x"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match("[a-zA-Z0-9_.\\-]+", ""), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match("[a-zA-Z0-9_.\\-]+", "a b"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match("[a-zA-Z0-9_.\\-]+", "a:b"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match("[a-zA-Z0-9_.\\-:]+", "a:b"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match("[a-zA-Z0-9_.\\-]+", "caf\xc3\xa9"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match(FACE_RE, "ba911e94-7c3c-42b6-9a3f-0123456789ab"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match(FACE_RE, "BA911E94-7C3C-42B6-9A3F-0123456789AB"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match(FACE_RE, "ba911e94-7c3c-42b6-9a3f-0123456789a"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match(FACE_RE, "ba911e94-7c3c-42b6-9a3f-0123456789abc"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match(FACE_RE, "ba911e947c3c-42b6-9a3f-0123456789ab-"), 0);
    /* Java: a '-' right after a range is a literal */
    T_CHECK_EQ_INT(fl__api_pattern_match("^[a-zA-Z0-9-_]+$", "tok-en_1"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match("^[a-zA-Z0-9-_]+$", "tok.en"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match("^[a-zA-Z0-9-_]+$", "tok=en"), 0);
    /* quantifier forms and backtracking */
    T_CHECK_EQ_INT(fl__api_pattern_match("a*ab", "aaab"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match("a{2,3}b?", "aaa"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match("a{2,3}b?", "aaaa"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match("[0-9\\.]+", "7.0"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match("[^x]+", "abc"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match("[^x]+", "axc"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match("[0-9A-Za-z\\.\\-_]*", ""), 1);
}

static void test_pattern_tags(void)
{
    const char *re = "^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*$";
    T_CHECK_EQ_INT(fl__api_pattern_match(re, "team"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match(re, "cost center:1/a=b+c-d@e"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match(re, "aws:foo"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match(re, "xaws:foo"), 1);
    T_CHECK_EQ_INT(fl__api_pattern_match(re, "AWS:foo"), 1); /* lookahead is case-sensitive */
    T_CHECK_EQ_INT(fl__api_pattern_match(re, "a#b"), 0);
    T_CHECK_EQ_INT(fl__api_pattern_match(re, "caf\xc3\xa9"), 1); /* é is \p{L} */
    T_CHECK_EQ_INT(fl__api_pattern_match(re, "a\xe3\x80\x80"
                                             "b"),
                   1); /* U+3000 is \p{Z} */
    T_CHECK_EQ_INT(fl__api_pattern_match(re, ""), 1);
}

static void test_pattern_unsupported(void)
{
    T_CHECK_EQ_INT(fl__api_pattern_match("(ab)+", "ab"), -1);
    T_CHECK_EQ_INT(fl__api_pattern_match("a|b", "a"), -1);
    T_CHECK_EQ_INT(fl__api_pattern_match("[a-z", "a"), -1);
    T_CHECK_EQ_INT(fl__api_pattern_match("a{3,1}", "a"), -1);
    T_CHECK_EQ_INT(fl__api_pattern_match("\\q", "q"), -1);
}

static void test_utf8_len(void)
{
    T_CHECK_EQ_INT(fl__api_utf8_len(""), 0);
    T_CHECK_EQ_INT(fl__api_utf8_len("abc"), 3);
    T_CHECK_EQ_INT(fl__api_utf8_len("caf\xc3\xa9"), 4);
    T_CHECK_EQ_INT(fl__api_utf8_len("\xf0\x9f\x98\x80"), 1);
}

struct vcase {
    const char *op;
    const char *body;
    enum fl_status want;
    const char *msg; /* substring of err.msg, or NULL */
};

static const struct vcase vcases[] = {
    {"CreateCollection", "{\"CollectionId\":\"c1\"}", FL_OK, NULL},
    {"CreateCollection", "{\"CollectionId\":\"c1\",\"Tags\":{\"team\":\"a\"}}", FL_OK, NULL},
    {"CreateCollection", "{}", FL_ERR_INVALID_ARG, "missing required member 'CollectionId'"},
    {"CreateCollection", "{\"CollectionId\":null}", FL_ERR_INVALID_ARG, "CollectionId"},
    {"CreateCollection", "{\"CollectionId\":\"\"}", FL_ERR_INVALID_ARG,
     "length greater than or equal to 1"},
    {"CreateCollection", "{\"CollectionId\":\"bad id\"}", FL_ERR_INVALID_ARG,
     "regular expression pattern"},
    {"CreateCollection", "{\"CollectionId\":7}", FL_ERR_SERIALIZATION, "'CollectionId' must be"},
    {"CreateCollection", "{\"CollectionId\":\"c\",\"Foo\":1}", FL_ERR_INVALID_ARG,
     "unknown member 'Foo'"},
    {"CreateCollection", "{\"CollectionId\":\"c\",\"Tags\":{\"aws:x\":\"v\"}}", FL_ERR_INVALID_ARG,
     "Tags"},
    {"CreateCollection", "{\"CollectionId\":\"c\",\"Tags\":{\"k\":1}}", FL_ERR_SERIALIZATION,
     "Tags.k"},
    {"CreateCollection", "{\"CollectionId\":\"c\",\"Tags\":[]}", FL_ERR_SERIALIZATION, "Tags"},
    /* type errors win over constraint errors anywhere in the body */
    {"CreateCollection", "{\"CollectionId\":\"bad id\",\"Tags\":5}", FL_ERR_SERIALIZATION, "Tags"},
    {"ListCollections", "{}", FL_OK, NULL},
    {"ListCollections", "{\"MaxResults\":4096}", FL_OK, NULL},
    {"ListCollections", "{\"MaxResults\":4097}", FL_ERR_INVALID_ARG, "less than or equal to 4096"},
    {"ListCollections", "{\"MaxResults\":-1}", FL_ERR_INVALID_ARG, "'MaxResults'"},
    {"ListCollections", "{\"MaxResults\":1.5}", FL_ERR_SERIALIZATION, "integer"},
    {"ListCollections", "{\"MaxResults\":\"10\"}", FL_ERR_SERIALIZATION, "integer"},
    {"SearchFaces",
     "{\"CollectionId\":\"c\",\"FaceId\":\"ba911e94-7c3c-42b6-9a3f-0123456789ab\","
     "\"FaceMatchThreshold\":100,\"MaxFaces\":1}",
     FL_OK, NULL},
    {"SearchFaces",
     "{\"CollectionId\":\"c\",\"FaceId\":\"ba911e94-7c3c-42b6-9a3f-0123456789ab\","
     "\"FaceMatchThreshold\":100.5}",
     FL_ERR_INVALID_ARG, "FaceMatchThreshold"},
    {"SearchFaces", "{\"CollectionId\":\"c\",\"FaceId\":\"not-a-uuid\"}", FL_ERR_INVALID_ARG,
     "'FaceId'"},
    {"SearchFaces",
     "{\"CollectionId\":\"c\",\"FaceId\":\"ba911e94-7c3c-42b6-9a3f-0123456789ab\","
     "\"MaxFaces\":0}",
     FL_ERR_INVALID_ARG, "greater than or equal to 1"},
    {"SearchFaces",
     "{\"CollectionId\":\"c\",\"FaceId\":\"ba911e94-7c3c-42b6-9a3f-0123456789ab\","
     "\"FaceMatchThreshold\":true}",
     FL_ERR_SERIALIZATION, "FaceMatchThreshold"},
    {"DeleteFaces", "{\"CollectionId\":\"c\",\"FaceIds\":[]}", FL_ERR_INVALID_ARG,
     "length greater than or equal to 1"},
    {"DeleteFaces", "{\"CollectionId\":\"c\",\"FaceIds\":[\"x\"]}", FL_ERR_INVALID_ARG,
     "FaceIds[0]"},
    {"DeleteFaces", "{\"CollectionId\":\"c\",\"FaceIds\":[1]}", FL_ERR_SERIALIZATION, "FaceIds[0]"},
    {"DeleteFaces", "{\"CollectionId\":\"c\",\"FaceIds\":\"ba911e94-7c3c-42b6-9a3f-0123456789ab\"}",
     FL_ERR_SERIALIZATION, "list"},
    {"CreateUser", "{\"CollectionId\":\"c\",\"UserId\":\"u:1\",\"ClientRequestToken\":\"a-b_c\"}",
     FL_OK, NULL},
    {"CreateUser", "{\"CollectionId\":\"c\",\"UserId\":\"u 1\"}", FL_ERR_INVALID_ARG, "'UserId'"},
    {"CreateUser", "{\"CollectionId\":\"c\",\"UserId\":\"u\",\"ClientRequestToken\":\"a.b\"}",
     FL_ERR_INVALID_ARG, "ClientRequestToken"},
    {"IndexFaces",
     "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"aGVsbG8=\"},"
     "\"QualityFilter\":\"HIGH\",\"DetectionAttributes\":[\"ALL\",\"DEFAULT\"]}",
     FL_OK, NULL},
    {"IndexFaces",
     "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"aGVsbG8=\"},"
     "\"QualityFilter\":\"BEST\"}",
     FL_ERR_INVALID_ARG, "enum value set"},
    {"IndexFaces",
     "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"aGVsbG8=\"},"
     "\"DetectionAttributes\":[\"FACE\"]}",
     FL_ERR_INVALID_ARG, "DetectionAttributes[0]"},
    {"IndexFaces", "{\"CollectionId\":\"c\"}", FL_ERR_INVALID_ARG, "'Image'"},
    {"IndexFaces", "{\"CollectionId\":\"c\",\"Image\":{}}", FL_ERR_INVALID_ARG, "Bytes"},
    {"IndexFaces",
     "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"aGVsbG8=\","
     "\"S3Object\":{\"Bucket\":\"bkt\",\"Name\":\"a.jpg\"}}}",
     FL_ERR_INVALID_ARG, "not both"},
    {"IndexFaces",
     "{\"CollectionId\":\"c\",\"Image\":{\"S3Object\":{\"Bucket\":\"bkt\","
     "\"Name\":\"a.jpg\"}}}",
     FL_ERR_S3, "Image.Bytes"},
    {"IndexFaces",
     "{\"CollectionId\":\"c\",\"Image\":{\"S3Object\":{\"Bucket\":\"b\","
     "\"Name\":\"a.jpg\"}}}",
     FL_ERR_INVALID_ARG, "Image.S3Object.Bucket"},
    {"IndexFaces", "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"not base64!\"}}",
     FL_ERR_IMAGE_FORMAT, "Image.Bytes"},
    {"IndexFaces", "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"\"}}", FL_ERR_INVALID_ARG,
     "Image.Bytes"},
    {"IndexFaces", "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"aGVsbG8=\",\"Foo\":1}}",
     FL_ERR_INVALID_ARG, "unknown member 'Foo' in 'Image'"},
    {"IndexFaces", "{\"CollectionId\":\"c\",\"Image\":{\"Bytes\":\"aGVsbG8=\"},\"MaxFaces\":0}",
     FL_ERR_INVALID_ARG, "MaxFaces"},
    {"CompareFaces", "{\"SourceImage\":{\"Bytes\":\"aGVsbG8=\"},\"TargetImage\":{}}",
     FL_ERR_INVALID_ARG, "TargetImage"},
    {"UntagResource",
     "{\"ResourceArn\":\"arn:aws:rekognition:us-east-1:0:collection/c\","
     "\"TagKeys\":[\"aws:k\"]}",
     FL_ERR_INVALID_ARG, "TagKeys[0]"},
    {"UntagResource", "{\"ResourceArn\":\"arn:short\",\"TagKeys\":[]}", FL_ERR_INVALID_ARG,
     "ResourceArn"},
    {"AssociateFaces",
     "{\"CollectionId\":\"c\",\"UserId\":\"u\",\"FaceIds\":[],"
     "\"UserMatchThreshold\":50}",
     FL_ERR_INVALID_ARG, "FaceIds"},
};

static void test_validate_cases(void)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(vcases); i++) {
        const struct vcase *c = &vcases[i];
        const struct fl__api_op_spec *op = fl__api_spec_find(c->op);
        struct fl_err err;
        json_error_t je;
        json_t *req = json_loads(c->body, 0, &je);
        enum fl_status rc;
        T_REQUIRE(op != NULL);
        T_REQUIRE(req != NULL);
        fl_err_clear(&err);
        rc = fl__api_validate(op, req, &err);
        if (rc != c->want || (c->msg && !strstr(err.msg, c->msg))) {
            printf("# case %zu %s %s: got %s \"%s\", want %s \"%s\"\n", i, c->op, c->body,
                   fl_status_exception(rc), err.msg, fl_status_exception(c->want),
                   c->msg ? c->msg : "");
            t_g.cur_failed++;
        }
        json_decref(req);
    }
}

/* Image.Bytes: 5242880 decoded bytes pass, one more is ImageTooLargeException. */
static void test_image_size_limit(void)
{
    const struct fl__api_op_spec *op = fl__api_spec_find("DetectFaces");
    size_t n_ok = 5242880, enc = fl_base64_encoded_len(n_ok + 3);
    char *b64 = fl_malloc(enc + 1);
    uint8_t *raw = fl_calloc(n_ok + 3, 1);
    struct fl_err err;
    json_t *req;
    T_REQUIRE(op && b64 && raw);
    fl_base64_encode(raw, n_ok, b64); /* 5242880 = 3 * 1747626 + 2 -> one '=' */
    req = json_pack("{s:{s:s}}", "Image", "Bytes", b64);
    T_CHECK_EQ_INT(fl__api_validate(op, req, &err), FL_OK);
    json_decref(req);
    fl_base64_encode(raw, n_ok + 1, b64);
    req = json_pack("{s:{s:s}}", "Image", "Bytes", b64);
    T_CHECK_EQ_INT(fl__api_validate(op, req, &err), FL_ERR_IMAGE_TOO_LARGE);
    T_CHECK(strstr(err.msg, "Image size is too large") != NULL);
    json_decref(req);
    fl_base64_encode(raw, n_ok + 3, b64);
    req = json_pack("{s:{s:s}}", "Image", "Bytes", b64);
    T_CHECK_EQ_INT(fl__api_validate(op, req, &err), FL_ERR_IMAGE_TOO_LARGE);
    json_decref(req);
    fl_free(raw);
    fl_free(b64);
}

/* Length limits count characters (code points), not bytes. */
static void test_length_in_chars(void)
{
    const struct fl__api_op_spec *op = fl__api_spec_find("TagResource");
    char key[128 * 2 + 1];
    struct fl_err err;
    json_t *req;
    T_REQUIRE(op != NULL);
    for (int i = 0; i < 128; i++)
        memcpy(key + 2 * i, "\xc3\xa9", 2);
    key[256] = '\0';
    req = json_pack("{s:s,s:{s:s}}", "ResourceArn",
                    "arn:aws:rekognition:us-east-1:000000000000:collection/c", "Tags", key, "v");
    T_CHECK_EQ_INT(fl__api_validate(op, req, &err), FL_OK);
    json_decref(req);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_pattern_basic);
    T_RUN(test_pattern_tags);
    T_RUN(test_pattern_unsupported);
    T_RUN(test_utf8_len);
    T_RUN(test_validate_cases);
    T_RUN(test_image_size_limit);
    T_RUN(test_length_in_chars);
    return t_done();
}
