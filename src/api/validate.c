/*
 * validate.c: check a parsed request against an operation's input shape.
 *
 * What: every request passes through fl__api_validate() before its handler
 * runs, so handlers can read members without re-checking types or limits,
 * and a rejected request never reaches the store (a failed call changes
 * nothing).
 *
 * Which exception, and why (see docs/internals/api.md for sources):
 *   - Wrong JSON type (a string where an integer belongs, an object where a
 *     list belongs...): SerializationException. The AWS JSON 1.1 front end
 *     fails to deserialise such a body before any validation runs; this is
 *     the generic AWS JSON behaviour, marked unverified for Rekognition in the
 *     spec (_meta.observed_behaviour.protocol_level_errors_unverified).
 *   - Missing required member, unknown member, length, pattern, numeric
 *     range, enum value, list or map size: InvalidParameterException, whose
 *     real message is "Request has invalid parameters" (REKOGNITION.md §1.1).
 *     We keep that text as the prefix and add which member and what was
 *     expected, phrased like the AWS validation messages ("Value '0' at
 *     'MaxFaces' failed to satisfy constraint: Member must have value
 *     greater than or equal to 1").
 *   - Image.Bytes decoded larger than 5242880 bytes: ImageTooLargeException
 *     "Image size is too large." (REKOGNITION.md §4.5).
 *   - Image.Bytes not valid base64: InvalidImageFormatException "Invalid
 *     image encoding" (the message users report when the bytes are not an
 *     encoded image, aws/aws-cli#2931).
 *   - Image.S3Object: InvalidS3ObjectException. FaceLink has no S3; the
 *     member is valid in the model, so the request is well-formed but the
 *     object cannot be fetched, which is what that exception means.
 *   - Image with both or neither of Bytes and S3Object:
 *     InvalidParameterException.
 *   - A JSON null member counts as absent (AWS JSON deserialisers skip nulls).
 *
 * Order: a first pass checks JSON types over the whole request, a second
 * pass checks constraints, so a body with both kinds of fault reports the
 * serialisation error, as the service (deserialise, then validate) does.
 * Within a pass, members are checked in the shape's (spec) order, then
 * unknown members in request order.
 *
 * Invariants: no allocation (base64 is checked in place, not decoded).
 * Threading: pure.
 */
#include "api/spec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define IPE          "Request has invalid parameters: "
#define PATH_MAX_LEN 160

enum pass { PASS_TYPES, PASS_CONSTRAINTS };

const struct fl__api_op_spec *fl__api_spec_find(const char *name)
{
    for (size_t i = 0; i < fl__api_spec_n_ops; i++)
        if (strcmp(fl__api_spec_ops[i].name, name) == 0)
            return &fl__api_spec_ops[i];
    return NULL;
}

const struct fl__api_member *fl__api_shape_member(const struct fl__api_shape *sh, const char *name)
{
    for (int i = 0; i < sh->n_members; i++)
        if (strcmp(sh->members[i].name, name) == 0)
            return &sh->members[i];
    return NULL;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

static const char *shape_type_name(enum fl__api_type t)
{
    switch (t) {
    case FL__API_T_STRING:
    case FL__API_T_ENUM:
        return "a string";
    case FL__API_T_INTEGER:
        return "an integer";
    case FL__API_T_FLOAT:
        return "a number";
    case FL__API_T_BOOLEAN:
        return "a boolean";
    case FL__API_T_BLOB:
        return "a base64 string";
    case FL__API_T_LIST:
        return "a list";
    case FL__API_T_MAP:
        return "an object (map)";
    case FL__API_T_STRUCT:
        return "an object";
    }
    return "?";
}

static bool type_ok(enum fl__api_type t, const json_t *v)
{
    switch (t) {
    case FL__API_T_STRING:
    case FL__API_T_ENUM:
    case FL__API_T_BLOB:
        return json_is_string(v);
    case FL__API_T_INTEGER:
        return json_is_integer(v);
    case FL__API_T_FLOAT:
        return json_is_number(v);
    case FL__API_T_BOOLEAN:
        return json_is_boolean(v);
    case FL__API_T_LIST:
        return json_is_array(v);
    case FL__API_T_MAP:
    case FL__API_T_STRUCT:
        return json_is_object(v);
    }
    return false;
}

/* Short printable excerpt of a string value for messages. */
static void excerpt(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n + 1 <= cap) {
        memcpy(out, s, n + 1);
        return;
    }
    /* cut on a code point boundary and mark the cut */
    n = cap - 4;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    memcpy(out, s, n);
    memcpy(out + n, "...", 4);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '/')
        return 1;
    return -1;
}

/* Decoded length of a padded standard base64 string, or false if it is not
 * one (the same rules as fl_base64_decode). */
static bool b64_check(const char *s, size_t len, size_t *out_decoded)
{
    size_t pad = 0;
    if (len % 4 != 0)
        return false;
    if (len >= 1 && s[len - 1] == '=')
        pad++;
    if (len >= 2 && s[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (b64_value((unsigned char)s[i]) < 0)
            return false;
    *out_decoded = len / 4 * 3 - pad;
    return true;
}

static enum fl_status check_value(const struct fl__api_shape *sh, const json_t *v, const char *path,
                                  enum pass pass, bool in_image, struct fl_err *err);

static enum fl_status check_string(const struct fl__api_shape *sh, const char *s, const char *path,
                                   struct fl_err *err)
{
    size_t n = fl__api_utf8_len(s);
    char ex[48];
    excerpt(s, ex, sizeof(ex));
    if (sh->has_min && (double)n < sh->min)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value '%s' at '%s' failed to satisfy constraint: Member must have "
                              "length greater than or equal to %.0f",
                          ex, path, sh->min);
    if (sh->has_max && (double)n > sh->max)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value '%s' at '%s' failed to satisfy constraint: Member must have "
                              "length less than or equal to %.0f",
                          ex, path, sh->max);
    if (sh->pattern) {
        int m = fl__api_pattern_match(sh->pattern, s);
        if (m < 0)
            return fl_err_set(err, FL_ERR_INTERNAL, "api: unsupported pattern syntax in %s",
                              sh->pattern);
        if (m == 0)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              IPE "Value '%s' at '%s' failed to satisfy constraint: Member must "
                                  "satisfy regular expression pattern: %s",
                              ex, path, sh->pattern);
    }
    if (sh->n_enum > 0) {
        for (int i = 0; i < sh->n_enum; i++)
            if (strcmp(sh->enum_values[i], s) == 0)
                return FL_OK;
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value '%s' at '%s' failed to satisfy constraint: Member must "
                              "satisfy enum value set (%s)",
                          ex, path, sh->name);
    }
    return FL_OK;
}

static enum fl_status check_number(const struct fl__api_shape *sh, const json_t *v,
                                   const char *path, struct fl_err *err)
{
    double d = 0;
    char txt[40];
    fl_json_number(v, &d);
    if (json_is_integer(v))
        snprintf(txt, sizeof(txt), "%lld", (long long)json_integer_value(v));
    else
        snprintf(txt, sizeof(txt), "%g", d);
    if (sh->has_min && d < sh->min)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value '%s' at '%s' failed to satisfy constraint: Member must have "
                              "value greater than or equal to %g",
                          txt, path, sh->min);
    if (sh->has_max && d > sh->max)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value '%s' at '%s' failed to satisfy constraint: Member must have "
                              "value less than or equal to %g",
                          txt, path, sh->max);
    return FL_OK;
}

static enum fl_status check_blob(const struct fl__api_shape *sh, const json_t *v, const char *path,
                                 bool in_image, struct fl_err *err)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), decoded = 0;
    /* size first: the service refuses an oversized body before decoding it */
    if (sh->has_max && (double)(len / 4 * 3) > sh->max + 2) {
        if (in_image)
            return fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE,
                              "Image size is too large. (%s: more than %.0f bytes)", path, sh->max);
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value at '%s' failed to satisfy constraint: Member must have "
                              "length less than or equal to %.0f",
                          path, sh->max);
    }
    if (!b64_check(s, len, &decoded))
        return fl_err_set(err, FL_ERR_IMAGE_FORMAT,
                          "Invalid image encoding (%s is not standard padded base64)", path);
    if (sh->has_max && (double)decoded > sh->max) {
        if (in_image)
            return fl_err_set(err, FL_ERR_IMAGE_TOO_LARGE,
                              "Image size is too large. (%s: %zu bytes, limit %.0f)", path, decoded,
                              sh->max);
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value at '%s' failed to satisfy constraint: Member must have "
                              "length less than or equal to %.0f",
                          path, sh->max);
    }
    if (sh->has_min && (double)decoded < sh->min)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value at '%s' failed to satisfy constraint: Member must have "
                              "length greater than or equal to %.0f",
                          path, sh->min);
    return FL_OK;
}

static enum fl_status check_count(const struct fl__api_shape *sh, size_t n, const char *path,
                                  struct fl_err *err)
{
    if (sh->has_min && (double)n < sh->min)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value at '%s' failed to satisfy constraint: Member must have "
                              "length greater than or equal to %.0f (got %zu)",
                          path, sh->min, n);
    if (sh->has_max && (double)n > sh->max)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "Value at '%s' failed to satisfy constraint: Member must have "
                              "length less than or equal to %.0f (got %zu)",
                          path, sh->max, n);
    return FL_OK;
}

static void join_path(char *out, const char *base, const char *name)
{
    if (base[0])
        snprintf(out, PATH_MAX_LEN, "%s.%s", base, name);
    else
        snprintf(out, PATH_MAX_LEN, "%s", name);
}

/* Image: exactly one of Bytes and S3Object; S3 is not available here. */
static enum fl_status check_image(const json_t *v, const char *path, struct fl_err *err)
{
    const json_t *bytes = json_object_get(v, "Bytes");
    const json_t *s3 = json_object_get(v, "S3Object");
    bool has_b = bytes && !json_is_null(bytes);
    bool has_s3 = s3 && !json_is_null(s3);
    if (has_b && has_s3)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "%s must have exactly one of Bytes and S3Object, not both", path);
    if (!has_b && !has_s3)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "%s must have one of Bytes (base64 image) or S3Object", path);
    if (has_s3)
        return fl_err_set(err, FL_ERR_S3,
                          "Unable to get object metadata from S3: FaceLink does not read S3 "
                          "(%s.S3Object); send the image as %s.Bytes",
                          path, path);
    return FL_OK;
}

static enum fl_status check_struct(const struct fl__api_shape *sh, const json_t *v,
                                   const char *path, enum pass pass, bool in_image,
                                   struct fl_err *err)
{
    enum fl_status rc;
    const char *key;
    json_t *mv;
    char sub[PATH_MAX_LEN];
    bool image = in_image || strcmp(sh->name, "Image") == 0;
    for (int i = 0; i < sh->n_members; i++) {
        const struct fl__api_member *m = &sh->members[i];
        const json_t *x = json_object_get(v, m->name);
        join_path(sub, path, m->name);
        if (!x || json_is_null(x)) {
            if (m->required && pass == PASS_CONSTRAINTS)
                return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "missing required member '%s' (%s)",
                                  sub, shape_type_name(m->shape->type));
            continue;
        }
        rc = check_value(m->shape, x, sub, pass, image, err);
        if (rc != FL_OK)
            return rc;
    }
    if (pass == PASS_CONSTRAINTS) {
        json_object_foreach((json_t *)v, key, mv)
        {
            if (!fl__api_shape_member(sh, key)) {
                char ex[48];
                excerpt(key, ex, sizeof(ex));
                if (path[0])
                    return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "unknown member '%s' in '%s'",
                                      ex, path);
                return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "unknown member '%s'", ex);
            }
        }
        if (strcmp(sh->name, "Image") == 0)
            return check_image(v, path, err);
    }
    return FL_OK;
}

static enum fl_status check_value(const struct fl__api_shape *sh, const json_t *v, const char *path,
                                  enum pass pass, bool in_image, struct fl_err *err)
{
    enum fl_status rc;
    char sub[PATH_MAX_LEN];
    if (pass == PASS_TYPES && !type_ok(sh->type, v))
        return fl_err_set(err, FL_ERR_SERIALIZATION, "Value at '%s' must be %s, got %s", path,
                          shape_type_name(sh->type), json_type_name(v));
    switch (sh->type) {
    case FL__API_T_STRING:
    case FL__API_T_ENUM:
        return pass == PASS_CONSTRAINTS ? check_string(sh, json_string_value(v), path, err) : FL_OK;
    case FL__API_T_INTEGER:
    case FL__API_T_FLOAT:
        return pass == PASS_CONSTRAINTS ? check_number(sh, v, path, err) : FL_OK;
    case FL__API_T_BOOLEAN:
        return FL_OK;
    case FL__API_T_BLOB:
        return pass == PASS_CONSTRAINTS ? check_blob(sh, v, path, in_image, err) : FL_OK;
    case FL__API_T_LIST: {
        size_t i;
        json_t *x;
        if (pass == PASS_CONSTRAINTS) {
            rc = check_count(sh, json_array_size(v), path, err);
            if (rc != FL_OK)
                return rc;
        }
        json_array_foreach(v, i, x)
        {
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            if (json_is_null(x))
                return fl_err_set(
                    err, pass == PASS_TYPES ? FL_ERR_SERIALIZATION : FL_ERR_INVALID_ARG,
                    "Value at '%s' must be %s, got null", sub, shape_type_name(sh->elem->type));
            rc = check_value(sh->elem, x, sub, pass, in_image, err);
            if (rc != FL_OK)
                return rc;
        }
        return FL_OK;
    }
    case FL__API_T_MAP: {
        const char *k;
        json_t *x;
        if (pass == PASS_CONSTRAINTS) {
            rc = check_count(sh, json_object_size(v), path, err);
            if (rc != FL_OK)
                return rc;
        }
        json_object_foreach((json_t *)v, k, x)
        {
            char ex[48];
            excerpt(k, ex, sizeof(ex));
            snprintf(sub, sizeof(sub), "%s.%s", path, ex);
            if (pass == PASS_CONSTRAINTS && sh->key) {
                rc = check_string(sh->key, k, path, err);
                if (rc != FL_OK)
                    return rc;
            }
            rc = check_value(sh->elem, x, sub, pass, in_image, err);
            if (rc != FL_OK)
                return rc;
        }
        return FL_OK;
    }
    case FL__API_T_STRUCT:
        return check_struct(sh, v, path, pass, in_image, err);
    }
    return fl_err_set(err, FL_ERR_INTERNAL, "api: bad shape type");
}

enum fl_status fl__api_validate(const struct fl__api_op_spec *op, const json_t *req,
                                struct fl_err *err)
{
    enum fl_status rc;
    FL_ASSERT(op && op->input && op->input->type == FL__API_T_STRUCT);
    if (!json_is_object(req))
        return fl_err_set(err, FL_ERR_SERIALIZATION, "request body must be a JSON object");
    rc = check_value(op->input, req, "", PASS_TYPES, false, err);
    if (rc != FL_OK)
        return rc;
    return check_value(op->input, req, "", PASS_CONSTRAINTS, false, err);
}
