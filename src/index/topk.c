/*
 * topk.c: bounded top-k selection with a threshold.
 *
 * What. Keep the k best (distance, id) pairs seen so far in a binary max-heap
 * stored in the caller's result array, so a search allocates nothing. The
 * heap root is the worst kept pair; a candidate enters only if it beats the
 * root, replacing it (one sift-down, O(log k)). The scan asks
 * fl__index_topk_bound() first, so with a full heap nearly every row is
 * rejected by one float compare and the heap is touched rarely.
 *
 * Order. Pairs compare by distance, then by id (smaller is better), a strict
 * total order on distinct ids. That makes the result independent of storage
 * order: the same set of vectors gives the same answer whatever the history of
 * adds and swap-removes was. The final sort is an in-place heapsort on the
 * same order (no allocation, O(k log k)).
 *
 * NaN distances (possible only from overflowing inputs, which the index
 * rejects) compare false against the threshold and are never kept.
 *
 * Rejected alternatives: a sorted array with insertion (O(k) per accepted
 * candidate, fine for k = 10 but not for k = 4096) and quickselect over all
 * distances (needs an N-sized buffer per query).
 *
 * Threading: a selector belongs to one search; no shared state.
 */
#include "index/index_int.h"

/* True if a is worse than b: larger distance, or equal distance and larger id. */
static inline bool worse(const struct fl_index_hit *a, const struct fl_index_hit *b)
{
    if (a->distance != b->distance)
        return a->distance > b->distance;
    return a->id > b->id;
}

/* Restore the max-heap property below index i in h[0..n). */
static void sift_down(struct fl_index_hit *h, size_t n, size_t i)
{
    struct fl_index_hit x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && worse(&h[c + 1], &h[c]))
            c++;
        if (!worse(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* Move h[i] up while it is worse than its parent. */
static void sift_up(struct fl_index_hit *h, size_t i)
{
    struct fl_index_hit x = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&x, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

void fl__index_topk_init(struct fl__index_topk *t, struct fl_index_hit *hits, size_t k,
                         float max_distance)
{
    FL_ASSERT(k >= 1);
    t->hits = hits;
    t->k = k;
    t->n = 0;
    t->max_distance = max_distance;
}

void fl__index_topk_push(struct fl__index_topk *t, uint64_t id, float distance)
{
    struct fl_index_hit c = {.id = id, .distance = distance};
    if (!(distance <= t->max_distance))
        return; /* over the threshold, or NaN */
    if (t->n < t->k) {
        t->hits[t->n] = c;
        sift_up(t->hits, t->n);
        t->n++;
        return;
    }
    if (!worse(&t->hits[0], &c))
        return;
    t->hits[0] = c;
    sift_down(t->hits, t->n, 0);
}

size_t fl__index_topk_finish(struct fl__index_topk *t)
{
    /* Heapsort: repeatedly move the worst to the end of the shrinking heap. */
    for (size_t end = t->n; end > 1; end--) {
        struct fl_index_hit tmp = t->hits[0];
        t->hits[0] = t->hits[end - 1];
        t->hits[end - 1] = tmp;
        sift_down(t->hits, end - 1, 0);
    }
    return t->n;
}
