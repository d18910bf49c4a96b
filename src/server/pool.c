/*
 * pool.c: the worker pool behind the HTTP server.
 *
 * What: n threads take jobs from one bounded FIFO (a ring of queue_max
 * slots). The HTTP I/O threads only parse and hand over; every operation, the
 * SigV4 hashing included, runs here (STYLE.md 2.7: I/O threads never compute).
 *
 * Why bounded and non-blocking: when the machine is saturated, a request that
 * waits in an unbounded queue only times out later in the client; answering
 * ThrottlingException at once lets the SDK's retry with back-off do its job.
 * So fl__pool_submit() never waits: a full ring is reported to the caller.
 *
 * Invariants: 0 <= n_queued <= cap; head is the oldest job; a job is run
 * exactly once; after stopping is set no job is accepted, and the workers
 * exit only when the ring is empty, so every accepted job runs (the server
 * relies on this: each job resumes a suspended connection).
 *
 * Threading model: one mutex guards the ring, the counters and the stopping
 * flag; one condition variable wakes workers. The lock is held only to move a
 * job in or out, never while a job runs. A lock-free ring was rejected: the
 * critical section is a few stores and contention is bounded by n_io +
 * n_workers threads, far below what a mutex handles.
 */
#include "server/server_int.h"

#include <pthread.h>

struct job {
    fl__pool_job_fn fn;
    void *arg;
};

struct fl__pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *ring; /* owned; cap slots */
    int cap;
    int head; /* index of the oldest queued job */
    int n_queued;
    int n_busy; /* jobs running */
    bool stopping;
    pthread_t *threads; /* owned; n_threads */
    int n_threads;
    int n_started;
};

/* Worker loop: take the oldest job, run it unlocked, repeat; exit when
 * stopping and the ring is empty. */
static void *worker_main(void *arg)
{
    struct fl__pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->n_queued == 0 && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->n_queued == 0)
            break; /* stopping and drained */
        struct job j = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->n_queued--;
        p->n_busy++;
        pthread_mutex_unlock(&p->mu);
        j.fn(j.arg);
        pthread_mutex_lock(&p->mu);
        p->n_busy--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct fl__pool *fl__pool_new(int n_threads, int queue_max, struct fl_err *err)
{
    struct fl__pool *p = NULL;
    if (n_threads < 1 || queue_max < 1) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "pool: %d threads, queue of %d", n_threads, queue_max);
        return NULL;
    }
    p = fl_calloc(1, sizeof(*p));
    if (!p)
        goto nomem;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->cap = queue_max;
    p->n_threads = n_threads;
    p->ring = fl_calloc((size_t)queue_max, sizeof(*p->ring));
    p->threads = fl_calloc((size_t)n_threads, sizeof(*p->threads));
    if (!p->ring || !p->threads)
        goto nomem;
    for (int i = 0; i < n_threads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc != 0) {
            fl_err_set(err, FL_ERR_INTERNAL, "pool: pthread_create failed (%d)", rc);
            if (err)
                err->sys_errno = rc;
            fl__pool_free(p);
            return NULL;
        }
        p->n_started++;
    }
    return p;
nomem:
    fl_err_set(err, FL_ERR_NOMEM, "pool: out of memory");
    fl__pool_free(p);
    return NULL;
}

bool fl__pool_submit(struct fl__pool *p, fl__pool_job_fn fn, void *arg)
{
    bool ok = false;
    pthread_mutex_lock(&p->mu);
    if (!p->stopping && p->n_queued < p->cap) {
        int tail = (p->head + p->n_queued) % p->cap;
        p->ring[tail].fn = fn;
        p->ring[tail].arg = arg;
        p->n_queued++;
        ok = true;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

int fl__pool_depth(struct fl__pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_queued;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int fl__pool_busy(struct fl__pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_busy;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void fl__pool_shutdown(struct fl__pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->threads[i], NULL);
    p->n_started = 0;
}

void fl__pool_free(struct fl__pool *p)
{
    if (!p)
        return;
    fl__pool_shutdown(p);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    fl_free(p->threads);
    fl_free(p->ring);
    fl_free(p);
}
