/*
 * keymap.c: face key -> FaceId, per collection.
 *
 * The vector index knows faces by the store's integer key; search results
 * are turned back into FaceIds here before the store is asked for the face
 * records. Linear probing over a power-of-two table, tombstones on delete,
 * load kept under 1/2 (counting tombstones) by growing or rehashing.
 *
 * Invariants: keys are > 0 (the store never hands out 0); slot value 0 means
 * empty, -1 deleted. reserve(n) guarantees the next n puts do not allocate.
 *
 * Threading: none inside; the service lock protects each collection's map
 * (writers exclusive).
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

void fl__api_keymap_init(struct fl__api_keymap *m)
{
    memset(m, 0, sizeof(*m));
}

void fl__api_keymap_fini(struct fl__api_keymap *m)
{
    fl_free(m->keys);
    fl_free(m->ids);
    memset(m, 0, sizeof(*m));
}

static size_t slot_of(int64_t key, size_t cap)
{
    uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static enum fl_status rehash(struct fl__api_keymap *m, size_t cap, struct fl_err *err)
{
    int64_t *keys = NULL;
    char(*ids)[FL_UUID_STR_LEN + 1] = NULL;
    size_t bytes;
    if (!fl_size_mul(cap, sizeof(*ids), &bytes))
        return fl_err_set(err, FL_ERR_NOMEM, "keymap: size overflow");
    keys = fl_calloc(cap, sizeof(*keys));
    ids = fl_malloc(bytes);
    if (!keys || !ids) {
        fl_free(keys);
        fl_free(ids);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (face key map)");
    }
    for (size_t i = 0; i < m->cap; i++) {
        size_t s;
        if (m->keys[i] <= 0)
            continue;
        s = slot_of(m->keys[i], cap);
        while (keys[s] != 0)
            s = (s + 1) & (cap - 1);
        keys[s] = m->keys[i];
        memcpy(ids[s], m->ids[i], sizeof(ids[s]));
    }
    fl_free(m->keys);
    fl_free(m->ids);
    m->keys = keys;
    m->ids = ids;
    m->cap = cap;
    m->n_deleted = 0;
    return FL_OK;
}

enum fl_status fl__api_keymap_reserve(struct fl__api_keymap *m, size_t n, struct fl_err *err)
{
    size_t need, cap = m->cap ? m->cap : 16;
    if (!fl_size_add(m->n + m->n_deleted, n, &need) || !fl_size_mul(need, 2, &need))
        return fl_err_set(err, FL_ERR_NOMEM, "keymap: size overflow");
    if (need <= m->cap)
        return FL_OK;
    /* size for the live entries (tombstones go away on rehash) */
    if (!fl_size_add(m->n, n, &need) || !fl_size_mul(need, 2, &need))
        return fl_err_set(err, FL_ERR_NOMEM, "keymap: size overflow");
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return fl_err_set(err, FL_ERR_NOMEM, "keymap: size overflow");
        cap *= 2;
    }
    return rehash(m, cap, err);
}

enum fl_status fl__api_keymap_put(struct fl__api_keymap *m, int64_t key, const char *face_id,
                                  struct fl_err *err)
{
    enum fl_status rc;
    size_t s, tomb = SIZE_MAX;
    FL_ASSERT(key > 0);
    rc = fl__api_keymap_reserve(m, 1, err);
    if (rc != FL_OK)
        return rc;
    s = slot_of(key, m->cap);
    while (m->keys[s] != 0) {
        if (m->keys[s] == key) {
            snprintf(m->ids[s], sizeof(m->ids[s]), "%s", face_id);
            return FL_OK;
        }
        if (m->keys[s] < 0 && tomb == SIZE_MAX)
            tomb = s;
        s = (s + 1) & (m->cap - 1);
    }
    if (tomb != SIZE_MAX) {
        s = tomb;
        m->n_deleted--;
    }
    m->keys[s] = key;
    snprintf(m->ids[s], sizeof(m->ids[s]), "%s", face_id);
    m->n++;
    return FL_OK;
}

const char *fl__api_keymap_get(const struct fl__api_keymap *m, int64_t key)
{
    size_t s;
    if (m->cap == 0 || key <= 0)
        return NULL;
    s = slot_of(key, m->cap);
    while (m->keys[s] != 0) {
        if (m->keys[s] == key)
            return m->ids[s];
        s = (s + 1) & (m->cap - 1);
    }
    return NULL;
}

void fl__api_keymap_del(struct fl__api_keymap *m, int64_t key)
{
    size_t s;
    if (m->cap == 0 || key <= 0)
        return;
    s = slot_of(key, m->cap);
    while (m->keys[s] != 0) {
        if (m->keys[s] == key) {
            m->keys[s] = -1;
            m->n--;
            m->n_deleted++;
            return;
        }
        s = (s + 1) & (m->cap - 1);
    }
}
