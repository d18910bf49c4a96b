/*
 * t.h: the test runner (TAP lines per test, standard closing lines).
 *
 * One test binary per file in tests/unit. Each binary prints "ok N - name" or
 * "not ok N - name" per test, "# file:line: ..." for each failed check, and
 * ends with "1..N" and "tests: P passed, F failed, S skipped". It exits 0 if
 * and only if nothing failed. tests/run sums the closing lines of every
 * binary and script into the total that `make test` ends with.
 *
 * argv[1], when given, runs only the tests whose name contains it.
 */
#ifndef T_H
#define T_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct t_state {
    int n_run, n_fail, n_skip;
    int cur_failed;          /* checks failed inside the current test */
    const char *skip_reason; /* set by T_SKIP() */
    const char *filter;      /* run only tests whose name contains this */
};
extern struct t_state t_g;
#define T_MAIN_STATE struct t_state t_g

#define T_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                      \
            t_g.cur_failed++;                                                                      \
        }                                                                                          \
    } while (0)

#define T_CHECK_EQ_INT(a, b)                                                                       \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ != t_b_) {                                                                        \
            printf("# %s:%d: %s == %s: got %lld, want %lld\n", __FILE__, __LINE__, #a, #b, t_a_,    \
                   t_b_);                                                                          \
            t_g.cur_failed++;                                                                      \
        }                                                                                          \
    } while (0)

#define T_CHECK_EQ_STR(a, b)                                                                       \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                                           \
            printf("# %s:%d: %s == %s: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a, #b,      \
                   t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");                                \
            t_g.cur_failed++;                                                                      \
        }                                                                                          \
    } while (0)

/* |a - b| <= tol */
#define T_CHECK_NEAR(a, b, tol)                                                                    \
    do {                                                                                           \
        double t_a_ = (double)(a), t_b_ = (double)(b);                                             \
        if (!(fabs(t_a_ - t_b_) <= (double)(tol))) {                                               \
            printf("# %s:%d: %s ~ %s: got %.9g, want %.9g (tol %g)\n", __FILE__, __LINE__, #a, #b, \
                   t_a_, t_b_, (double)(tol));                                                     \
            t_g.cur_failed++;                                                                      \
        }                                                                                          \
    } while (0)

/* Stop the current test (not the binary) when later checks would crash. */
#define T_REQUIRE(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("# %s:%d: required: %s\n", __FILE__, __LINE__, #cond);                          \
            t_g.cur_failed++;                                                                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define T_SKIP(reason)                                                                             \
    do {                                                                                           \
        t_g.skip_reason = (reason);                                                                \
        return;                                                                                    \
    } while (0)
#define T_RUN(fn) t_run_one(#fn, fn)

static inline void t_run_one(const char *name, void (*fn)(void))
{
    if (t_g.filter && !strstr(name, t_g.filter))
        return;
    t_g.cur_failed = 0;
    t_g.skip_reason = NULL;
    fn();
    t_g.n_run++;
    if (t_g.skip_reason && !t_g.cur_failed) {
        t_g.n_skip++;
        printf("ok %d - %s # SKIP %s\n", t_g.n_run, name, t_g.skip_reason);
    } else if (t_g.cur_failed) {
        t_g.n_fail++;
        printf("not ok %d - %s\n", t_g.n_run, name);
    } else {
        printf("ok %d - %s\n", t_g.n_run, name);
    }
    fflush(stdout);
}

static inline void t_init(int argc, char **argv)
{
    t_g.filter = argc > 1 ? argv[1] : NULL;
}

/* Prints the two standard closing lines; returns the process exit status. */
static inline int t_done(void)
{
    printf("1..%d\n", t_g.n_run);
    printf("tests: %d passed, %d failed, %d skipped\n", t_g.n_run - t_g.n_fail - t_g.n_skip,
           t_g.n_fail, t_g.n_skip);
    return t_g.n_fail ? 1 : 0;
}

/* Path of a file in ../shared (or $FL_SHARED), written into buf; NULL when the
 * shared folder or the file is absent, so the caller can T_SKIP visibly. */
static inline const char *t_shared(const char *rel, char *buf, size_t cap)
{
    const char *root = getenv("FL_SHARED");
    if (!root || !*root)
        root = "../shared";
    if ((size_t)snprintf(buf, cap, "%s/%s", root, rel) >= cap)
        return NULL;
    return access(buf, R_OK) == 0 ? buf : NULL;
}

/* Path of a file under models/ (or $FL_MODELS); NULL when absent. */
static inline const char *t_model(const char *rel, char *buf, size_t cap)
{
    const char *root = getenv("FL_MODELS");
    if (!root || !*root)
        root = "models";
    if ((size_t)snprintf(buf, cap, "%s/%s", root, rel) >= cap)
        return NULL;
    return access(buf, R_OK) == 0 ? buf : NULL;
}
#endif /* T_H */
