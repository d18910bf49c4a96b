/* t_jsonl.c: JSON-lines loading for golden tests (test-only code). */
#include "t_jsonl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t **t_jsonl_load(const char *path, size_t *out_n)
{
    FILE *f = fopen(path, "r");
    json_t **rows = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    if (!f)
        return NULL;
    while (getline(&line, &line_cap, f) > 0) {
        json_error_t je;
        json_t *v = json_loads(line, 0, &je);
        if (!v)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            rows = realloc(rows, cap * sizeof(*rows));
        }
        rows[n++] = v;
    }
    free(line);
    fclose(f);
    *out_n = n;
    return rows;
}

void t_jsonl_free(json_t **rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(rows[i]);
    free(rows);
}

json_t *t_jsonl_find(json_t **rows, size_t n, const char *key, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_object_get(rows[i], key));
        if (s && strcmp(s, value) == 0)
            return rows[i];
    }
    return NULL;
}

static size_t floats_rec(const json_t *v, float *out, size_t cap, size_t at)
{
    size_t i;
    json_t *e;
    if (json_is_number(v)) {
        if (at < cap)
            out[at] = (float)json_number_value(v);
        return at + 1;
    }
    json_array_foreach(v, i, e) at = floats_rec(e, out, cap, at);
    return at;
}

size_t t_json_floats(const json_t *arr, float *out, size_t cap)
{
    size_t n = floats_rec(arr, out, cap, 0);
    return n < cap ? n : cap;
}
