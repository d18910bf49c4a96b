/*
 * arena.c: bump allocation over a chain of chunks.
 *
 * Why: request handling and inference allocate many short-lived pieces whose
 * lifetime ends together. An arena makes that one free, and after warm-up a
 * reset arena serves the same workload without calling malloc (ggml's context,
 * h2o's per-request pool).
 *
 * Invariants: head is the newest chunk; each chunk's data follows its header;
 * used counts bytes handed out (with alignment padding) since init/reset and
 * never exceeds cap when cap != 0. reset keeps only the largest chunk.
 * Threading: none; one arena per thread.
 */
#include "core/core.h"

#include <string.h>

#define ARENA_MIN_CHUNK (64 * 1024)

struct fl_arena_chunk {
    struct fl_arena_chunk *next;
    size_t size; /* bytes of data */
    size_t off;  /* bytes used */
    alignas(max_align_t) unsigned char data[];
};

void fl_arena_init(struct fl_arena *a, size_t cap)
{
    a->head = NULL;
    a->used = 0;
    a->cap = cap;
}

/* Offset in c->data at which an allocation of this alignment may start. */
static size_t chunk_aligned_off(const struct fl_arena_chunk *c, size_t align)
{
    uintptr_t base = (uintptr_t)c->data, at = base + c->off;
    return (size_t)(((at + align - 1) & ~(uintptr_t)(align - 1)) - base);
}

void *fl_arena_alloc(struct fl_arena *a, size_t size, size_t align)
{
    struct fl_arena_chunk *c = a->head;
    size_t off, need, chunk_size, total;

    FL_ASSERT(align && (align & (align - 1)) == 0);
    if (c) {
        off = chunk_aligned_off(c, align);
        if (off <= c->size && size <= c->size - off) {
            if (a->cap && a->used + (off - c->off) + size > a->cap)
                return NULL;
            a->used += (off - c->off) + size;
            c->off = off + size;
            return c->data + off;
        }
    }
    if (!fl_size_add(size, align, &need))
        return NULL;
    if (a->cap && (size > a->cap || a->used + size > a->cap))
        return NULL;
    chunk_size = need < ARENA_MIN_CHUNK ? ARENA_MIN_CHUNK : need;
    if (c && chunk_size < 2 * c->size)
        chunk_size = 2 * c->size; /* geometric growth bounds the chunk count */
    if (!fl_size_add(chunk_size, sizeof(*c), &total))
        return NULL;
    c = fl_malloc(total);
    if (!c)
        return NULL;
    c->next = a->head;
    c->size = chunk_size;
    c->off = 0;
    off = chunk_aligned_off(c, align);
    c->off = off + size;
    a->head = c;
    a->used += size;
    return c->data + off;
}

void fl_arena_reset(struct fl_arena *a)
{
    struct fl_arena_chunk *c = a->head, *keep = NULL, *next;
    for (; c; c = next) {
        next = c->next;
        if (!keep || c->size > keep->size) {
            fl_free(keep);
            keep = c;
        } else {
            fl_free(c);
        }
    }
    if (keep) {
        keep->next = NULL;
        keep->off = 0;
    }
    a->head = keep;
    a->used = 0;
}

void fl_arena_fini(struct fl_arena *a)
{
    struct fl_arena_chunk *c = a->head, *next;
    for (; c; c = next) {
        next = c->next;
        fl_free(c);
    }
    a->head = NULL;
    a->used = 0;
}
