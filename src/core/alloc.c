/*
 * alloc.c: the one place that calls the C allocator.
 *
 * Every heap allocation in FaceLink goes through fl_malloc & co so it can be
 * counted (fl_alloc_live, for leak checks in tests) and made to fail on the
 * n-th call (fl_test_fail_alloc_at, for allocation-torture tests, as curl's
 * runtests -t and SQLite's OOM tests do). The injection costs one relaxed
 * atomic load per call when off, which is why it is always compiled in: the
 * tests exercise the very library that ships.
 *
 * Threading: counters are C11 atomics; any thread may allocate.
 */
#include "core/core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static atomic_long fail_countdown; /* 0 = off; else fail when it reaches 1 */
static atomic_long injected;
static atomic_long live;

void fl_test_fail_alloc_at(long n)
{
    atomic_store(&injected, 0);
    atomic_store(&fail_countdown, n > 0 ? n : 0);
}

long fl_test_injected(void)
{
    return atomic_load(&injected);
}

long fl_alloc_live(void)
{
    return atomic_load(&live);
}

/* True when this allocation should fail by injection. */
static bool should_fail(void)
{
    long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c == 0)
        return false;
    c = atomic_fetch_sub(&fail_countdown, 1);
    if (c == 1) {
        atomic_fetch_add(&injected, 1);
        return true;
    }
    if (c <= 0) /* raced past zero: keep it off */
        atomic_store(&fail_countdown, 0);
    return false;
}

void *fl_malloc(size_t size)
{
    void *p;
    if (should_fail())
        return NULL;
    p = malloc(size ? size : 1);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *fl_calloc(size_t n, size_t size)
{
    void *p;
    if (should_fail())
        return NULL;
    p = calloc(n ? n : 1, size ? size : 1);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *fl_realloc(void *p, size_t size)
{
    void *q;
    if (!p)
        return fl_malloc(size);
    if (should_fail())
        return NULL;
    q = realloc(p, size ? size : 1);
    return q;
}

void fl_free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub(&live, 1);
    free(p);
}

char *fl_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = fl_malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *fl_strdup(const char *s)
{
    return fl_strndup(s, SIZE_MAX);
}

void *fl_malloc_aligned(size_t size, size_t align)
{
    void *p = NULL;
    if (should_fail())
        return NULL;
    if (posix_memalign(&p, align, size ? size : 1) != 0)
        return NULL;
    atomic_fetch_add(&live, 1);
    return p;
}

void fl_advise_huge(void *p, size_t size)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    uintptr_t page = 4096, a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)p + size) & ~(page - 1);
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)size;
#endif
}

void fl_free_aligned(void *p)
{
    fl_free(p);
}
