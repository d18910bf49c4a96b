/* test_api_spec.c: the generated request table (src/api/spec_table.c) agrees
 * with ../shared/spec/rekognition_face_ops.json: every operation, target,
 * member, required flag, type, limit, pattern, enum value and error name.
 * Also checks that every pattern in the table is inside the matcher's subset. */
#include "t.h"
#include "api/spec.h"

T_MAIN_STATE;

static const char *const ops21[] = {
    "CreateCollection",    "DescribeCollection", "ListCollections", "DeleteCollection",
    "IndexFaces",          "ListFaces",          "DeleteFaces",     "SearchFaces",
    "SearchFacesByImage",  "CreateUser",         "DeleteUser",      "ListUsers",
    "AssociateFaces",      "DisassociateFaces",  "SearchUsers",     "SearchUsersByImage",
    "DetectFaces",         "CompareFaces",       "TagResource",     "UntagResource",
    "ListTagsForResource",
};

static json_t *load_spec(void)
{
    char path[1024];
    json_error_t je;
    if (!t_shared("spec/rekognition_face_ops.json", path, sizeof(path)))
        return NULL;
    return json_load_file(path, 0, &je);
}

/* Compare min/max/pattern of a shape with a constraints object, keys prefixed
 * by pre ("" or "member_"). */
static void check_limits(const char *what, const struct fl__api_shape *sh, json_t *cons,
                         const char *pre)
{
    char k[64];
    json_t *v;
    double d;
    snprintf(k, sizeof(k), "%smin", pre);
    v = json_object_get(cons, k);
    if (v) {
        T_CHECK(sh->has_min);
        T_CHECK(fl_json_number(v, &d) && d == sh->min);
    } else if (sh->type != FL__API_T_STRUCT) {
        if (sh->has_min)
            printf("# %s: table has min, spec has none\n", what);
        T_CHECK(!sh->has_min);
    }
    snprintf(k, sizeof(k), "%smax", pre);
    v = json_object_get(cons, k);
    if (v) {
        T_CHECK(sh->has_max);
        T_CHECK(fl_json_number(v, &d) && d == sh->max);
    } else {
        if (sh->has_max)
            printf("# %s: table has max, spec has none\n", what);
        T_CHECK(!sh->has_max);
    }
    snprintf(k, sizeof(k), "%spattern", pre);
    v = json_object_get(cons, k);
    if (v) {
        T_CHECK(sh->pattern && strcmp(sh->pattern, json_string_value(v)) == 0);
    } else {
        T_CHECK(sh->pattern == NULL);
    }
    snprintf(k, sizeof(k), "%senum", pre);
    v = json_object_get(cons, k);
    if (v) {
        T_CHECK_EQ_INT(sh->n_enum, json_array_size(v));
        for (int i = 0; i < sh->n_enum && i < (int)json_array_size(v); i++)
            T_CHECK_EQ_STR(sh->enum_values[i], json_string_value(json_array_get(v, (size_t)i)));
    }
}

static void check_member(json_t *spec, const char *op, const struct fl__api_member *m, json_t *jm)
{
    const char *t = json_string_value(json_object_get(jm, "type"));
    json_t *cons = json_object_get(jm, "constraints");
    const struct fl__api_shape *sh = m->shape;
    char what[128];
    snprintf(what, sizeof(what), "%s.%s", op, m->name);
    T_REQUIRE(t != NULL);
    T_CHECK_EQ_INT(m->required, json_is_true(json_object_get(jm, "required")));
    if (strcmp(t, "string") == 0) {
        T_CHECK_EQ_INT(sh->type, FL__API_T_STRING);
        check_limits(what, sh, cons, "");
    } else if (strcmp(t, "integer") == 0) {
        T_CHECK_EQ_INT(sh->type, FL__API_T_INTEGER);
        check_limits(what, sh, cons, "");
    } else if (strcmp(t, "float") == 0) {
        T_CHECK_EQ_INT(sh->type, FL__API_T_FLOAT);
        check_limits(what, sh, cons, "");
    } else if (strncmp(t, "list<", 5) == 0) {
        T_CHECK_EQ_INT(sh->type, FL__API_T_LIST);
        T_REQUIRE(sh->elem != NULL);
        if (json_object_get(cons, "min") || json_object_get(cons, "max")) {
            T_CHECK(!json_object_get(cons, "min") ||
                    json_number_value(json_object_get(cons, "min")) == sh->min);
            T_CHECK(!json_object_get(cons, "max") ||
                    json_number_value(json_object_get(cons, "max")) == sh->max);
        }
        check_limits(what, sh->elem, cons, "member_");
        if (strstr(t, "(enum)")) {
            T_CHECK_EQ_INT(sh->elem->type, FL__API_T_ENUM);
        } else {
            T_CHECK_EQ_INT(sh->elem->type, FL__API_T_STRING);
        }
    } else if (strncmp(t, "map<", 4) == 0) {
        T_CHECK_EQ_INT(sh->type, FL__API_T_MAP);
        T_CHECK(sh->key != NULL && sh->elem != NULL);
        T_CHECK_EQ_INT(sh->has_max, json_object_get(cons, "max") != NULL);
        T_CHECK(!sh->has_max || json_number_value(json_object_get(cons, "max")) == sh->max);
    } else if (strstr(t, "(enum)")) {
        T_CHECK_EQ_INT(sh->type, FL__API_T_ENUM);
        check_limits(what, sh, cons, "");
    } else {
        /* a structure: compare its members with the spec's shapes table */
        json_t *js = json_object_get(json_object_get(spec, "shapes"), t);
        json_t *jmem = json_object_get(js, "members");
        const char *k;
        json_t *v;
        T_CHECK_EQ_INT(sh->type, FL__API_T_STRUCT);
        T_REQUIRE(json_is_object(jmem));
        T_CHECK_EQ_INT(sh->n_members, json_object_size(jmem));
        json_object_foreach(jmem, k, v)
        {
            const struct fl__api_member *sm = fl__api_shape_member(sh, k);
            const char *st = json_string_value(json_object_get(v, "type"));
            if (!sm) {
                printf("# %s: member %s.%s missing from the table\n", what, t, k);
                t_g.cur_failed++;
                continue;
            }
            if (strcmp(st, "blob") == 0) {
                T_CHECK_EQ_INT(sm->shape->type, FL__API_T_BLOB);
                check_limits(what, sm->shape, json_object_get(v, "constraints"), "");
            } else if (strcmp(st, "string") == 0) {
                T_CHECK_EQ_INT(sm->shape->type, FL__API_T_STRING);
                check_limits(what, sm->shape, json_object_get(v, "constraints"), "");
            } else {
                T_CHECK_EQ_INT(sm->shape->type, FL__API_T_STRUCT);
            }
        }
    }
}

static void test_table_matches_spec(void)
{
    json_t *spec = load_spec();
    json_t *ops;
    if (!spec)
        T_SKIP("../shared/spec absent");
    ops = json_object_get(spec, "operations");
    T_REQUIRE(json_is_object(ops));
    T_CHECK_EQ_INT(fl__api_spec_n_ops, FL_ARRAY_LEN(ops21));
    for (size_t i = 0; i < FL_ARRAY_LEN(ops21); i++) {
        const struct fl__api_op_spec *op = fl__api_spec_find(ops21[i]);
        json_t *jo = json_object_get(ops, ops21[i]);
        json_t *jm, *je;
        const char *k;
        json_t *v;
        if (!op || !jo) {
            printf("# op %s missing (table %p, spec %p)\n", ops21[i], (const void *)op, (void *)jo);
            t_g.cur_failed++;
            continue;
        }
        T_CHECK_EQ_STR(op->target, json_string_value(json_object_get(jo, "target")));
        jm = json_object_get(json_object_get(jo, "request"), "members");
        T_CHECK_EQ_INT(op->input->n_members, json_object_size(jm));
        json_object_foreach(jm, k, v)
        {
            const struct fl__api_member *m = fl__api_shape_member(op->input, k);
            if (!m) {
                printf("# %s.%s missing from the table\n", ops21[i], k);
                t_g.cur_failed++;
                continue;
            }
            check_member(spec, ops21[i], m, v);
        }
        je = json_object_get(jo, "errors");
        T_CHECK_EQ_INT(op->n_errors, json_array_size(je));
        for (int e = 0; e < op->n_errors && e < (int)json_array_size(je); e++)
            T_CHECK_EQ_STR(op->errors[e], json_string_value(json_array_get(je, (size_t)e)));
        {
            json_t *tok = json_object_get(jo, "idempotency_token");
            if (json_is_string(tok)) {
                T_CHECK_EQ_STR(op->idempotency_token, json_string_value(tok));
            } else {
                T_CHECK(op->idempotency_token == NULL);
            }
        }
    }
    json_decref(spec);
}

/* Documented numeric defaults reach the table (the handlers use them). */
static void test_defaults(void)
{
    const struct fl__api_op_spec *op = fl__api_spec_find("AssociateFaces");
    const struct fl__api_member *m;
    T_REQUIRE(op != NULL);
    m = fl__api_shape_member(op->input, "UserMatchThreshold");
    T_REQUIRE(m != NULL);
    T_CHECK(m->has_def_num);
    T_CHECK_EQ_INT((int)m->def_num, 75);
    op = fl__api_spec_find("SearchFaces");
    T_REQUIRE(op != NULL);
    m = fl__api_shape_member(op->input, "FaceMatchThreshold");
    T_REQUIRE(m != NULL);
    T_CHECK(m->has_def_num);
    T_CHECK_EQ_INT((int)m->def_num, 80);
    op = fl__api_spec_find("IndexFaces");
    T_REQUIRE(op != NULL);
    m = fl__api_shape_member(op->input, "QualityFilter");
    T_REQUIRE(m != NULL);
    T_CHECK_EQ_STR(m->def_str, "AUTO");
}

static void walk_patterns(const struct fl__api_shape *sh, int depth)
{
    T_REQUIRE(depth < 8);
    if (sh->pattern) {
        int r = fl__api_pattern_match(sh->pattern, "x");
        if (r < 0)
            printf("# pattern outside the supported subset: %s\n", sh->pattern);
        T_CHECK(r >= 0);
    }
    if (sh->elem)
        walk_patterns(sh->elem, depth + 1);
    if (sh->key)
        walk_patterns(sh->key, depth + 1);
    for (int i = 0; i < sh->n_members; i++)
        walk_patterns(sh->members[i].shape, depth + 1);
}

static void test_patterns_supported(void)
{
    for (size_t i = 0; i < fl__api_spec_n_ops; i++)
        walk_patterns(fl__api_spec_ops[i].input, 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_table_matches_spec);
    T_RUN(test_defaults);
    T_RUN(test_patterns_supported);
    return t_done();
}
