/* test_store_crash.c: an acknowledged write is never lost (DESIGN.md §7).
 *
 * Several rounds, on one database file on disk: fork a child that opens the
 * store and indexes batches of faces in a loop, writing each batch's face ids
 * to a pipe only AFTER fl_store_faces_put() returned FL_OK; SIGKILL the child
 * at a random moment; then reopen the file and check that
 *   - PRAGMA integrity_check says "ok" and foreign_key_check finds nothing,
 *   - every acknowledged face is there with its exact embedding (recomputed
 *     here from the seed the child used, not read from the child),
 *   - batches are atomic (the face count is a multiple of the batch size and
 *     at most one unacknowledged batch per round was committed),
 *   - the collection's face_count matches the rows.
 * SIGKILL tests a process crash: the kernel keeps the written pages, so this
 * checks the commit protocol and recovery, not the fsync (synchronous=FULL is
 * what covers power loss; see docs/internals/store.md).
 *
 * The moment of the kill comes from the clock (40-300 ms after the fork in
 * even rounds, after the first acknowledgement in odd ones); the seed is
 * printed so that a failing run can be repeated with FL_CRASH_SEED=<seed>. */
#include "t.h"
#include "store/store.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

T_MAIN_STATE;

enum { DIM = 128, BATCH = 3, ROUNDS = 8, MAX_ACK = 200000 };

struct ack {
    int round;
    long seq;
    int j;
    char face_id[FL_UUID_STR_LEN + 1];
};

static struct ack g_acks[MAX_ACK];
static long g_n_acks;

/* The embedding of face j of batch seq in round r: a pure function of
 * (r, seq, j), computed the same way by the child and the checker. */
static void embedding_of(int r, long seq, int j, float *out)
{
    struct fl_rng rng;
    fl_rng_seed(&rng, ((uint64_t)r << 40) ^ ((uint64_t)seq << 8) ^ (uint64_t)j ^ 0x5eedULL);
    for (int i = 0; i < DIM; i++)
        out[i] = (float)(fl_rng_double(&rng) * 2.0 - 1.0);
}

/* Write all n bytes (a short write on a pipe can only come from a signal). */
static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The child: index batches forever, acknowledge each after its put returned.
 * Never returns. */
static _Noreturn void child_main(const char *path, int round, int fd)
{
    struct fl_store *st = NULL;
    static float emb[BATCH][DIM];
    struct fl_store_face f[BATCH];
    char line[BATCH * 80];
    if (fl_store_open(path, NULL, &st, NULL) != FL_OK)
        _exit(2);
    for (long seq = 0;; seq++) {
        size_t len = 0;
        for (int j = 0; j < BATCH; j++) {
            memset(&f[j], 0, sizeof(f[j]));
            if (fl_uuid_v4(f[j].face_id, NULL) != FL_OK || fl_uuid_v4(f[j].image_id, NULL) != FL_OK)
                _exit(3);
            embedding_of(round, seq, j, emb[j]);
            f[j].embedding = emb[j];
            f[j].dim = DIM;
            f[j].confidence = 99.0f;
            f[j].model_version = "101.0";
            f[j].bbox = (struct fl_store_bbox){0.1f, 0.2f, 0.3f, 0.4f};
        }
        if (fl_store_faces_put(st, "c", f, BATCH, NULL) != FL_OK)
            _exit(4);
        /* acknowledged: one write per batch (< PIPE_BUF, so atomic) */
        for (int j = 0; j < BATCH; j++)
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%d %ld %d %s\n", round, seq, j,
                                    f[j].face_id);
        if (write_all(fd, line, len) != 0)
            _exit(5);
    }
}

/* Parse complete lines of buf[0..*len) into g_acks; keep a partial tail. */
static void parse_acks(char *buf, size_t *len)
{
    size_t start = 0;
    for (size_t i = 0; i < *len; i++) {
        if (buf[i] != '\n')
            continue;
        buf[i] = '\0';
        if (g_n_acks < MAX_ACK) {
            struct ack *a = &g_acks[g_n_acks];
            if (sscanf(buf + start, "%d %ld %d %36s", &a->round, &a->seq, &a->j, a->face_id) == 4)
                g_n_acks++;
        }
        start = i + 1;
    }
    memmove(buf, buf + start, *len - start);
    *len -= start;
}

static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* PRAGMA integrity_check's first row into buf. */
static const char *integrity(const char *path, char *buf, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    snprintf(buf, cap, "(no answer)");
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return buf;
}

static void test_sigkill_while_indexing(void)
{
    char dir[256], path[300], ibuf[256], cmd[400];
    const char *tmp = getenv("TMPDIR");
    const char *seed_env = getenv("FL_CRASH_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : fl_time_mono_ns();
    struct fl_rng rng;
    struct fl_store *st = NULL;
    struct fl_arena a;
    struct fl_store_collection c;
    static float want[DIM];
    long killed = 0, rows = 0;

    printf("# FL_CRASH_SEED=%llu\n", (unsigned long long)seed);
    fl_rng_seed(&rng, seed);
    snprintf(dir, sizeof(dir), "%s/fl-crash-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    T_REQUIRE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/store.db", dir);
    T_REQUIRE(fl_store_open(path, NULL, &st, NULL) == FL_OK);
    {
        struct fl_store_collection cc = {
            .id = "c", .model_id = "m", .face_model_version = "101.0", .dim = DIM};
        T_REQUIRE(fl_store_collection_create(st, &cc, NULL) == FL_OK);
    }
    fl_store_close(st); /* no connection crosses the fork */

    for (int r = 0; r < ROUNDS; r++) {
        int fds[2];
        pid_t pid;
        char buf[8192];
        size_t len = 0;
        int status = 0;
        long before = g_n_acks;
        uint64_t deadline;
        /* kill between 40 and 300 ms after the fork (the open takes some) */
        uint64_t delay_ns = (uint64_t)(40 + fl_rng_next(&rng) % 260) * 1000000ull;

        T_REQUIRE(pipe(fds) == 0);
        fflush(stdout);
        pid = fork();
        T_REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(path, r, fds[1]);
        }
        close(fds[1]);
        /* Even rounds count the delay from the fork, so the kill may land
         * while the child opens (and recovers) the file; odd rounds count it
         * from the child's first acknowledgement (waiting up to 10 s for it),
         * so they kill mid-indexing even on a slow, loaded machine. */
        deadline = fl_time_mono_ns() + (r % 2 ? 10000000000ull : delay_ns);
        for (;;) {
            uint64_t now = fl_time_mono_ns();
            struct pollfd p = {.fd = fds[0], .events = POLLIN};
            ssize_t k;
            if (r % 2 && g_n_acks > before && deadline > now + delay_ns)
                deadline = now + delay_ns;
            if (now >= deadline)
                break;
            if (poll(&p, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
                continue;
            k = read(fds[0], buf + len, sizeof(buf) - len);
            if (k <= 0)
                break; /* the child died by itself: reported below */
            len += (size_t)k;
            parse_acks(buf, &len);
        }
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        /* everything the child acknowledged before dying is in the pipe */
        for (;;) {
            ssize_t k = read(fds[0], buf + len, sizeof(buf) - len);
            if (k <= 0)
                break;
            len += (size_t)k;
            parse_acks(buf, &len);
        }
        close(fds[0]);
        T_CHECK_EQ_INT(len, 0); /* acknowledgements are whole lines */
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            killed++;
        else
            printf("# round %d: child ended by itself (status 0x%x)\n", r, status);

        /* reopen (recovers the WAL), then check the file */
        T_CHECK_EQ_STR(integrity(path, ibuf, sizeof(ibuf)), "ok");
        T_CHECK_EQ_INT(raw_int(path, "PRAGMA foreign_key_check"), -1); /* no rows */
        T_REQUIRE(fl_store_open(path, NULL, &st, NULL) == FL_OK);
        fl_arena_init(&a, 0);
        for (long i = before; i < g_n_acks; i++) {
            struct fl_store_face f;
            struct ack *k = &g_acks[i];
            enum fl_status rc =
                fl_store_face_get(st, "c", k->face_id, FL_STORE_WANT_EMBEDDING, &a, &f, NULL);
            T_CHECK_EQ_INT(rc, FL_OK);
            if (rc != FL_OK) {
                printf("# round %d: acknowledged face %s (batch %ld) is missing\n", r, k->face_id,
                       k->seq);
                continue;
            }
            embedding_of(k->round, k->seq, k->j, want);
            T_CHECK(f.dim == DIM && memcmp(f.embedding, want, sizeof(want)) == 0);
            fl_arena_reset(&a);
        }
        rows = (long)raw_int(path, "SELECT count(*) FROM faces");
        T_CHECK_EQ_INT(rows % BATCH, 0);
        /* at most one committed-but-unacknowledged batch per round */
        T_CHECK(rows >= g_n_acks && rows <= g_n_acks + (long)(r + 1) * BATCH);
        T_REQUIRE(fl_store_collection_get(st, "c", &a, &c, NULL) == FL_OK);
        T_CHECK_EQ_INT(c.face_count, rows);
        fl_arena_fini(&a);
        fl_store_close(st);
        printf("# round %d: killed after %llu ms, %ld faces acknowledged in total, %ld rows\n", r,
               (unsigned long long)(delay_ns / 1000000), g_n_acks, rows);
    }
    T_CHECK(killed >= ROUNDS - 1);   /* the child loops forever: only SIGKILL ends it */
    T_CHECK(g_n_acks >= ROUNDS / 2); /* every odd round acknowledged something */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    fl_log_setup(FL_LOG_WARN, false);
    T_RUN(test_sigkill_while_indexing);
    return t_done();
}
