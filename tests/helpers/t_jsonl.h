/* t_jsonl.h: read a JSON-lines golden file into an array of json_t objects. */
#ifndef T_JSONL_H
#define T_JSONL_H
#include <jansson.h>
#include <stddef.h>

/* Rows of a .jsonl file; NULL if it cannot be read. Free with t_jsonl_free. */
json_t **t_jsonl_load(const char *path, size_t *out_n);
void t_jsonl_free(json_t **rows, size_t n);
/* The row whose string member key equals value, or NULL. */
json_t *t_jsonl_find(json_t **rows, size_t n, const char *key, const char *value);
/* Copy a JSON array of numbers (nested arrays are flattened) into out (max
 * cap values); returns the count. */
size_t t_json_floats(const json_t *arr, float *out, size_t cap);
#endif
