/*
 * hnsw.c: the Hierarchical Navigable Small World graph (Malkov & Yashunin)
 * behind fl_index's approximate search.
 *
 * What. Every node (one slot of the index's row storage) has a level drawn
 * from a geometric distribution (P(level >= l) = M^-l) and, on each level
 * 0..level, a list of links to nearby nodes: at most 2M on level 0, at most M
 * above. A search descends greedily from the entry point (a node on the top
 * level) to level 1, then runs a beam search of width ef on level 0. An
 * insert searches the same way with ef = efConstruction on every level of
 * the new node and links it to up to M neighbours chosen by the "heuristic"
 * of the paper (a candidate is kept only if it is nearer to the new node than
 * to every neighbour kept so far, which spreads links around the node).
 *
 * Links are symmetric. This is the invariant everything else leans on
 * (antirez's vector sets in Redis 8 make the same choice; hnswlib and FAISS
 * keep one-way links and cannot delete): a link a->b on level l exists if and
 * only if b->a does. Consequences:
 *   - a node's in-links are its out-links, so deleting a node finds every
 *     list that mentions it without a scan or reverse index, and the index's
 *     swap-remove (row n-1 moves into the hole) is a relabelling that touches
 *     only the moved node's neighbours;
 *   - when a new node wants a neighbour whose list is full, the neighbour
 *     gives up its farthest link (both directions) if the new node is nearer,
 *     and the node it dropped is offered the new node instead when both have
 *     room; a node is never dropped down to zero links;
 *   - deletion repair: every former neighbour of the deleted node lost one
 *     link, so each has a free place; they are paired closest pair first and
 *     linked when both still have room (the deleted node was their common
 *     neighbour, so they are usually near each other). A former neighbour
 *     left with no link at all on a level is reconnected by a search. The
 *     graph stays navigable after deleting half the nodes (tested: recall and
 *     reachability from the entry point).
 *
 * Levels are drawn from the graph's own fl_rng, seeded by the caller, so the
 * same sequence of operations builds the same graph (useful to reproduce a
 * bug, and the snapshot stores the generator's state).
 *
 * Storage. Level-0 lists live in chunks of 1024 nodes (one allocation each,
 * the same chunking as the rows, so growth never copies links): node s's
 * list is (2M + 1) uint32: a count, then the links. Levels above 0 are rare
 * (1/M of the nodes) and get one allocation per node: level x (M + 1) uint32.
 * Everything a change needs is allocated first (fl__hnsw_reserve,
 * fl__hnsw_prepare), so linking, unlinking, repair and relabelling never
 * allocate and cannot fail.
 *
 * Search state. A beam search needs a visited set (one uint32 epoch tag per
 * node: bumping the epoch clears it in O(1)) and a sorted candidate list of
 * ef entries. That state lives in a scratch object that one search owns
 * exclusively. Scratches are kept in a pool (Redis' "read slots", without
 * the fixed number): a search pops one under a short mutex, grows it if the
 * graph grew, and pushes it back. So concurrent searches share no mutable
 * state and a steady search load allocates nothing. The writer has its own
 * scratch, sized by fl__hnsw_reserve.
 *
 * Beam search. Instead of the paper's two heaps, one array sorted by distance
 * holds the best ef nodes seen, each flagged when expanded; the loop expands
 * the best unexpanded entry until none is left. This is the same search (a
 * candidate worse than the ef-th best is never expanded in either form),
 * bounded in memory by ef, and it makes the results come out sorted.
 * A search steps through the rows' int8 codes (index_int.h: a quarter of
 * the bytes) and re-scores its best candidates with the float rows, so what
 * it returns has exact distances; inserts and repairs, which shape the
 * graph, measure with the floats.
 *
 * Threading. Called only by index.c with the index's rwlock held: searches
 * under the read side (the graph is then immutable; the pool has its own
 * mutex), every change under the write side.
 */
#include "index/hnsw.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_NODES ((size_t)1 << FL__HNSW_CHUNK_SHIFT)
#define NONE        UINT32_MAX

struct node {
    uint32_t *upper; /* owned: level * (m + 1) uint32 (levels 1..level), NULL at level 0 */
    uint8_t level;
};

/* One beam entry: distance to the query, node, expanded flag. */
struct beam_ent {
    float d;
    uint32_t s;
    uint32_t done;
};

struct fl__hnsw_scratch {
    struct fl__hnsw_scratch *next; /* pool link */
    uint32_t *visited;             /* owned; vcap epoch tags */
    size_t vcap;
    uint32_t epoch;
    struct beam_ent *list; /* owned; lcap entries */
    struct fl__hnsw_cand *out;
    size_t lcap;
};

/* A pair of a deleted node's former neighbours, for the repair. */
struct pair {
    float d;
    uint32_t a, b;
};

struct fl__hnsw {
    unsigned m, m0;              /* max links above level 0 / on level 0 */
    unsigned ef_construction;    /* beam width while inserting */
    double ml;                   /* 1 / ln(M): level draw scale */
    struct fl_rng rng;           /* level draws */
    size_t n;                    /* nodes linked: slots 0..n-1 */
    size_t n_prepared;           /* nodes n..n+n_prepared-1 have levels drawn */
    size_t cap;                  /* nodes with storage (multiple of CHUNK_NODES) */
    struct node *nodes;          /* owned; cap entries */
    uint32_t **l0;               /* owned; cap / CHUNK_NODES chunks of level-0 lists */
    size_t upper_bytes;          /* bytes held by upper lists (memory_bytes) */
    uint32_t ep;                 /* entry point, NONE when empty */
    int max_level;               /* ep's level, -1 when empty */
    struct fl__hnsw_scratch wsc; /* writer's scratch */
    struct pair *pairs;          /* owned; writer's repair buffer, m0 (m0 - 1) / 2 */
    pthread_mutex_t pool_lock;
    struct fl__hnsw_scratch *pool; /* idle search scratches */
    size_t pool_bytes;
};

/* ============================== Small helpers ============================== */

static inline uint32_t *links(const struct fl__hnsw *g, uint32_t s, int l)
{
    if (l == 0)
        return g->l0[s >> FL__HNSW_CHUNK_SHIFT] + (size_t)(s & (CHUNK_NODES - 1)) * (g->m0 + 1);
    return g->nodes[s].upper + (size_t)(l - 1) * (g->m + 1);
}

static inline unsigned cap_at(const struct fl__hnsw *g, int l)
{
    return l == 0 ? g->m0 : g->m;
}

static inline float gdist(const struct fl__hnsw_vecs *v, const float *a, const float *b)
{
    float d = v->dist(a, b, v->dim);
    return v->neg ? -d : d;
}

static bool has_link(const uint32_t *lst, uint32_t t)
{
    for (uint32_t i = 1; i <= lst[0]; i++) {
        if (lst[i] == t)
            return true;
    }
    return false;
}

/* Remove t from list lst (order not kept). */
static void drop_link(uint32_t *lst, uint32_t t)
{
    for (uint32_t i = 1; i <= lst[0]; i++) {
        if (lst[i] == t) {
            lst[i] = lst[lst[0]];
            lst[0]--;
            return;
        }
    }
    FL_ASSERT(!"link to drop not present");
}

static void link_pair(struct fl__hnsw *g, uint32_t a, uint32_t b, int l)
{
    uint32_t *la = links(g, a, l), *lb = links(g, b, l);
    FL_ASSERT(la[0] < cap_at(g, l) && lb[0] < cap_at(g, l));
    la[++la[0]] = b;
    lb[++lb[0]] = a;
}

static void unlink_pair(struct fl__hnsw *g, uint32_t a, uint32_t b, int l)
{
    drop_link(links(g, a, l), b);
    drop_link(links(g, b, l), a);
}

static void new_epoch(struct fl__hnsw_scratch *sc)
{
    if (++sc->epoch == 0) {
        memset(sc->visited, 0, sc->vcap * sizeof(*sc->visited));
        sc->epoch = 1;
    }
}

/* Grow a scratch to vcap visited tags and lcap beam entries. */
static bool scratch_grow(struct fl__hnsw_scratch *sc, size_t vcap, size_t lcap)
{
    if (vcap > sc->vcap) {
        uint32_t *v = fl_calloc(vcap, sizeof(*v));
        if (!v)
            return false;
        fl_free(sc->visited);
        sc->visited = v;
        sc->vcap = vcap;
        sc->epoch = 0;
    }
    if (lcap > sc->lcap) {
        struct beam_ent *l = fl_malloc(lcap * sizeof(*l));
        struct fl__hnsw_cand *o = fl_malloc(lcap * sizeof(*o));
        if (!l || !o) {
            fl_free(l);
            fl_free(o);
            return false;
        }
        fl_free(sc->list);
        fl_free(sc->out);
        sc->list = l;
        sc->out = o;
        sc->lcap = lcap;
    }
    return true;
}

static void scratch_fini(struct fl__hnsw_scratch *sc)
{
    fl_free(sc->visited);
    fl_free(sc->list);
    fl_free(sc->out);
}

static size_t scratch_bytes(const struct fl__hnsw_scratch *sc)
{
    return sc->vcap * sizeof(uint32_t) + sc->lcap * (sizeof(struct beam_ent) + sizeof(*sc->out));
}

/* ================================ Lifecycle ================================ */

struct fl__hnsw *fl__hnsw_new(unsigned m, unsigned ef_construction, uint64_t seed,
                              struct fl_err *err)
{
    struct fl__hnsw *g;
    FL_ASSERT(m >= 2 && m <= FL__HNSW_M_MAX && ef_construction >= 1);
    g = fl_calloc(1, sizeof(*g));
    if (!g) {
        fl_err_set(err, FL_ERR_NOMEM, "index: out of memory for the graph");
        return NULL;
    }
    g->m = m;
    g->m0 = 2 * m;
    g->ef_construction = ef_construction;
    g->ml = 1.0 / log((double)m);
    fl_rng_seed(&g->rng, seed);
    g->ep = NONE;
    g->max_level = -1;
    g->pairs = fl_malloc((size_t)g->m0 * (g->m0 - 1) / 2 * sizeof(*g->pairs));
    if (!g->pairs || pthread_mutex_init(&g->pool_lock, NULL) != 0) {
        fl_free(g->pairs);
        fl_free(g);
        fl_err_set(err, FL_ERR_NOMEM, "index: cannot create the graph's pool lock");
        return NULL;
    }
    return g;
}

void fl__hnsw_free(struct fl__hnsw *g)
{
    if (!g)
        return;
    for (size_t s = 0; s < g->cap; s++)
        fl_free(g->nodes[s].upper);
    for (size_t c = 0; c < g->cap / CHUNK_NODES; c++)
        fl_free(g->l0[c]);
    fl_free(g->l0);
    fl_free(g->nodes);
    scratch_fini(&g->wsc);
    while (g->pool) {
        struct fl__hnsw_scratch *sc = g->pool;
        g->pool = sc->next;
        scratch_fini(sc);
        fl_free(sc);
    }
    pthread_mutex_destroy(&g->pool_lock);
    fl_free(g->pairs);
    fl_free(g);
}

size_t fl__hnsw_count(const struct fl__hnsw *g)
{
    return g->n;
}

unsigned fl__hnsw_m(const struct fl__hnsw *g)
{
    return g->m;
}

unsigned fl__hnsw_ef_construction(const struct fl__hnsw *g)
{
    return g->ef_construction;
}

size_t fl__hnsw_memory_bytes(struct fl__hnsw *g)
{
    size_t pool;
    pthread_mutex_lock(&g->pool_lock);
    pool = g->pool_bytes;
    pthread_mutex_unlock(&g->pool_lock);
    return sizeof(*g) + g->cap * (sizeof(struct node) + (g->m0 + 1) * sizeof(uint32_t)) +
           g->upper_bytes + scratch_bytes(&g->wsc) + pool +
           (size_t)g->m0 * (g->m0 - 1) / 2 * sizeof(struct pair);
}

enum fl_status fl__hnsw_reserve(struct fl__hnsw *g, size_t n_total, struct fl_err *err)
{
    size_t want = g->cap, lcap = FL_MAX((size_t)g->ef_construction, (size_t)g->m0) + 1;
    if (n_total > g->cap) {
        size_t chunks, old_chunks = g->cap / CHUNK_NODES;
        uint32_t **l0;
        struct node *nodes;
        want = g->cap ? g->cap : CHUNK_NODES;
        while (want < n_total)
            want *= 2;
        chunks = want / CHUNK_NODES;
        l0 = fl_realloc(g->l0, chunks * sizeof(*l0));
        if (!l0)
            return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory growing the graph");
        g->l0 = l0;
        nodes = fl_realloc(g->nodes, want * sizeof(*nodes));
        if (!nodes)
            return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory growing the graph");
        g->nodes = nodes;
        memset(nodes + g->cap, 0, (want - g->cap) * sizeof(*nodes));
        for (size_t c = old_chunks; c < chunks; c++) {
            uint32_t *ch = fl_malloc(CHUNK_NODES * (g->m0 + 1) * sizeof(uint32_t));
            if (!ch) {
                /* Keep the chunks made so far: cap covers whole chunks only. */
                g->cap = c * CHUNK_NODES;
                return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory for graph links");
            }
            g->l0[c] = ch;
            g->cap = (c + 1) * CHUNK_NODES;
        }
    }
    if (!scratch_grow(&g->wsc, g->cap, lcap))
        return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory for graph scratch");
    return FL_OK;
}

static int draw_level(struct fl__hnsw *g)
{
    double u = fl_rng_double(&g->rng); /* [0, 1) */
    double l = floor(-log(1.0 - u) * g->ml);
    return l > FL__HNSW_MAX_LEVEL ? FL__HNSW_MAX_LEVEL : (int)l;
}

/* Give node s level `level` with empty lists (upper lists allocated). */
static bool node_init(struct fl__hnsw *g, uint32_t s, int level)
{
    struct node *nd = &g->nodes[s];
    nd->level = (uint8_t)level;
    nd->upper = NULL;
    if (level > 0) {
        size_t b = (size_t)level * (g->m + 1) * sizeof(uint32_t);
        nd->upper = fl_calloc((size_t)level * (g->m + 1), sizeof(uint32_t));
        if (!nd->upper)
            return false;
        g->upper_bytes += b;
    }
    links(g, s, 0)[0] = 0;
    return true;
}

static void node_release(struct fl__hnsw *g, uint32_t s)
{
    struct node *nd = &g->nodes[s];
    if (nd->upper)
        g->upper_bytes -= (size_t)nd->level * (g->m + 1) * sizeof(uint32_t);
    fl_free(nd->upper);
    nd->upper = NULL;
    nd->level = 0;
}

enum fl_status fl__hnsw_prepare(struct fl__hnsw *g, size_t count, struct fl_err *err)
{
    struct fl_rng saved = g->rng;
    size_t first = g->n + g->n_prepared;
    FL_ASSERT(first + count <= g->cap);
    for (size_t i = 0; i < count; i++) {
        if (!node_init(g, (uint32_t)(first + i), draw_level(g))) {
            while (i-- > 0)
                node_release(g, (uint32_t)(first + i));
            g->rng = saved;
            return fl_err_set(err, FL_ERR_NOMEM, "index: out of memory for graph levels");
        }
    }
    g->n_prepared += count;
    return FL_OK;
}

void fl__hnsw_unprepare(struct fl__hnsw *g)
{
    for (size_t i = 0; i < g->n_prepared; i++)
        node_release(g, (uint32_t)(g->n + i));
    g->n_prepared = 0;
}

/* ============================== Beam search ============================== */

/* Insert (d, s) into the sorted beam list[0..*len) of capacity ef, dropping
 * the worst when full. Returns the position, or ef if it did not enter. */
static size_t beam_insert(struct beam_ent *list, size_t *len, size_t ef, float d, uint32_t s)
{
    size_t lo = 0, hi = *len;
    if (*len == ef && !(d < list[ef - 1].d))
        return ef;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (list[mid].d <= d)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t keep = *len < ef ? *len : ef - 1;
    memmove(&list[lo + 1], &list[lo], (keep - lo) * sizeof(*list));
    list[lo] = (struct beam_ent){.d = d, .s = s, .done = 0};
    if (*len < ef)
        (*len)++;
    return lo;
}

/* What a walk measures from: the query and whether to step through the int8
 * codes (searches) or the floats (inserts and repairs, which shape the graph
 * and so get the exact distances). */
struct probe {
    const float *q;
    bool codes;
    float qq; /* |q|^2, for L2 through the codes */
};

static struct probe probe_floats(const float *q)
{
    return (struct probe){.q = q, .codes = false, .qq = 0.0f};
}

/* Graph distance from the probe to node s: the float distance, or through
 * the code: -s (q . c) for dot, |q|^2 - 2 s (q . c) + |s c|^2 for L2. */
static inline float pdist(const struct fl__hnsw_vecs *v, const struct probe *p, uint32_t s)
{
    if (!p->codes)
        return gdist(v, p->q, fl__hnsw_row(v, s));
    const int8_t *c = fl__hnsw_code(v, s);
    float scale, sqn, dot;
    fl__index_code_meta(c, v->cstride, &scale, &sqn);
    dot = scale * v->qdot(p->q, c, v->dim);
    return v->neg ? -dot : p->qq - 2.0f * dot + sqn;
}

/* Beam search on level l from the entries already in sc->list[0..len)
 * (sorted, visited tags set by the caller for this epoch). Returns the final
 * length (<= ef). */
static size_t beam(const struct fl__hnsw *g, const struct fl__hnsw_vecs *v,
                   struct fl__hnsw_scratch *sc, const struct probe *p, int l, size_t ef,
                   size_t len)
{
    struct beam_ent *list = sc->list;
    uint32_t *vis = sc->visited, ep = sc->epoch;
    uint32_t fresh[2 * FL__HNSW_M_MAX];
    size_t i = 0;
    while (i < len) {
        if (list[i].done) {
            i++;
            continue;
        }
        list[i].done = 1;
        const uint32_t *lst = links(g, list[i].s, l);
        uint32_t cnt = lst[0], nf = 0;
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t t = lst[j];
            if (vis[t] == ep)
                continue;
            vis[t] = ep;
            fresh[nf++] = t;
        }
        /* All distances first, then the inserts, so the rows' misses can
         * overlap. No software prefetch: measured on 100,000 x 320, hinting
         * the rows (all of them, or a few ahead) made no difference or made
         * it slower (docs/internals/index.md). */
        float dist[2 * FL__HNSW_M_MAX];
        for (uint32_t j = 0; j < nf; j++)
            dist[j] = pdist(v, p, fresh[j]);
        size_t best = len;
        for (uint32_t j = 0; j < nf; j++) {
            size_t pos = beam_insert(list, &len, ef, dist[j], fresh[j]);
            if (pos < best)
                best = pos;
        }
        /* Continue from the best new entry if it landed before i, else past i. */
        i = best <= i ? best : i + 1;
    }
    return len;
}

/* Greedy descent (ef = 1) on level l from *cur (distance *dcur). */
static void greedy(const struct fl__hnsw *g, const struct fl__hnsw_vecs *v, const struct probe *p,
                   int l, uint32_t *cur, float *dcur)
{
    bool moved = true;
    while (moved) {
        moved = false;
        const uint32_t *lst = links(g, *cur, l);
        for (uint32_t j = 1; j <= lst[0]; j++) {
            float d = pdist(v, p, lst[j]);
            if (d < *dcur) {
                *dcur = d;
                *cur = lst[j];
                moved = true;
            }
        }
    }
}

/* Start a beam on level l from one node; returns the beam length. `self`
 * (NONE for queries) is marked visited so a node never finds itself. */
static size_t beam_from(const struct fl__hnsw *g, const struct fl__hnsw_vecs *v,
                        struct fl__hnsw_scratch *sc, const struct probe *p, int l, size_t ef,
                        uint32_t ep, float dep, uint32_t self)
{
    new_epoch(sc);
    if (self != NONE)
        sc->visited[self] = sc->epoch;
    sc->visited[ep] = sc->epoch;
    sc->list[0] = (struct beam_ent){.d = dep, .s = ep, .done = 0};
    return beam(g, v, sc, p, l, ef, 1);
}

/* =============================== Insertion =============================== */

/* The paper's neighbour-selection heuristic: from cands (sorted by distance
 * to the new node), keep a candidate only if it is nearer to the new node
 * than to every one kept so far; at most `max` kept, into out. */
static size_t select_heuristic(const struct fl__hnsw_vecs *v, const struct beam_ent *cands,
                               size_t nc, size_t max, struct beam_ent *out)
{
    size_t no = 0;
    for (size_t i = 0; i < nc && no < max; i++) {
        const float *ci = fl__hnsw_row(v, cands[i].s);
        bool good = true;
        for (size_t j = 0; j < no && good; j++)
            good = gdist(v, ci, fl__hnsw_row(v, out[j].s)) >= cands[i].d;
        if (good)
            out[no++] = cands[i];
    }
    /* Fill up with the nearest pruned candidates (keepPrunedConnections). */
    for (size_t i = 0; i < nc && no < max; i++) {
        bool kept = false;
        for (size_t j = 0; j < no && !kept; j++)
            kept = out[j].s == cands[i].s;
        if (!kept)
            out[no++] = cands[i];
    }
    return no;
}

#define DROP_CANDIDATES 4 /* farthest links examined for redundancy */

/* The link t should give up on level l to make room for new node s (at
 * distance dts), or NONE to refuse s. Links whose own list has a single
 * link are never dropped (that would isolate a node). Among the
 * DROP_CANDIDATES farthest links, the farthest redundant one is preferred: w
 * is redundant when s or another neighbour u of t is nearer to w than t is
 * (the paper's heuristic: w stays reachable through that node). That keeps
 * the long, diverse links that navigation needs, where dropping the farthest
 * link blindly would cut exactly those. Without a redundant one, the
 * farthest link goes if s is nearer than it (or always, with force). */
static uint32_t link_to_drop(const struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t t,
                             uint32_t s, float dts, int l, bool force)
{
    const uint32_t *lst = links(g, t, l);
    const float *rt = fl__hnsw_row(v, t), *rs = fl__hnsw_row(v, s);
    uint32_t cand[DROP_CANDIDATES];
    float dc[DROP_CANDIDATES];
    size_t nc = 0;
    /* The DROP_CANDIDATES farthest droppable links, farthest first. */
    for (uint32_t j = 1; j <= lst[0]; j++) {
        if (links(g, lst[j], l)[0] < 2)
            continue;
        float d = gdist(v, rt, fl__hnsw_row(v, lst[j]));
        size_t pos = nc;
        while (pos > 0 && dc[pos - 1] < d)
            pos--;
        if (pos >= DROP_CANDIDATES)
            continue;
        size_t last = nc < DROP_CANDIDATES ? nc : DROP_CANDIDATES - 1;
        for (size_t i = last; i > pos; i--) {
            cand[i] = cand[i - 1];
            dc[i] = dc[i - 1];
        }
        cand[pos] = lst[j];
        dc[pos] = d;
        if (nc < DROP_CANDIDATES)
            nc++;
    }
    if (nc == 0)
        return NONE;
    for (size_t i = 0; i < nc; i++) {
        const float *rw = fl__hnsw_row(v, cand[i]);
        if (gdist(v, rs, rw) < dc[i])
            return cand[i];
        for (uint32_t j = 1; j <= lst[0]; j++) {
            if (lst[j] != cand[i] && gdist(v, fl__hnsw_row(v, lst[j]), rw) < dc[i])
                return cand[i];
        }
    }
    return force || dts < dc[0] ? cand[0] : NONE;
}

/* Link new node s to neighbour t on level l (d = their distance). If t is
 * full, t gives up the link link_to_drop() picks (or refuses s), and the
 * node it dropped is offered s. Returns true if s and t are linked. */
static bool connect(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t s, uint32_t t,
                    float d, int l, bool force)
{
    unsigned cap = cap_at(g, l);
    uint32_t *ls = links(g, s, l), *lt = links(g, t, l);
    if (ls[0] >= cap || has_link(ls, t))
        return false;
    if (lt[0] < cap) {
        link_pair(g, s, t, l);
        return true;
    }
    uint32_t w = link_to_drop(g, v, t, s, d, l, force);
    if (w == NONE)
        return false;
    unlink_pair(g, t, w, l);
    link_pair(g, s, t, l);
    if (ls[0] < cap && links(g, w, l)[0] < cap && !has_link(ls, w))
        link_pair(g, s, w, l);
    return true;
}

/* Link node s (level set, lists empty, vector written) into the graph. */
static void insert_node(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t s)
{
    struct fl__hnsw_scratch *sc = &g->wsc;
    struct beam_ent sel[2 * FL__HNSW_M_MAX];
    int level = g->nodes[s].level;
    struct probe p = probe_floats(fl__hnsw_row(v, s));
    if (g->ep == NONE) {
        g->ep = s;
        g->max_level = level;
        return;
    }
    uint32_t cur = g->ep;
    float dcur = pdist(v, &p, cur);
    for (int l = g->max_level; l > level; l--)
        greedy(g, v, &p, l, &cur, &dcur);
    size_t len = 0;
    for (int l = FL_MIN(level, g->max_level); l >= 0; l--) {
        if (len == 0) {
            len = beam_from(g, v, sc, &p, l, g->ef_construction, cur, dcur, s);
        } else {
            /* Seed this level with the previous level's results. */
            new_epoch(sc);
            sc->visited[s] = sc->epoch;
            for (size_t i = 0; i < len; i++) {
                sc->list[i].done = 0;
                sc->visited[sc->list[i].s] = sc->epoch;
            }
            len = beam(g, v, sc, &p, l, g->ef_construction, len);
        }
        size_t ns = select_heuristic(v, sc->list, len, g->m, sel);
        size_t linked = 0;
        for (size_t i = 0; i < ns; i++)
            linked += connect(g, v, s, sel[i].s, sel[i].d, l, false);
        /* Every node keeps at least one link per level when the level has
         * other nodes: fall back to forcing the nearest candidates. */
        for (size_t i = 0; linked == 0 && i < len; i++)
            linked += connect(g, v, s, sc->list[i].s, sc->list[i].d, l, true);
    }
    if (level > g->max_level) {
        g->ep = s;
        g->max_level = level;
    }
}

void fl__hnsw_append(struct fl__hnsw *g, const struct fl__hnsw_vecs *v)
{
    FL_ASSERT(g->n_prepared > 0);
    uint32_t s = (uint32_t)g->n;
    g->n++;
    g->n_prepared--;
    insert_node(g, v, s);
}

void fl__hnsw_relink(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t s)
{
    FL_ASSERT(s < g->n);
    insert_node(g, v, s);
}

/* ================================ Deletion ================================ */

/* A new entry point other than x: the node of highest level (x's neighbours
 * on its top level first, else a scan); NONE if x is the only node. */
static void choose_entry(struct fl__hnsw *g, uint32_t x)
{
    int top = g->nodes[x].level;
    const uint32_t *lst = links(g, x, top);
    if (lst[0] > 0) {
        g->ep = lst[1];
        g->max_level = top;
        return;
    }
    g->ep = NONE;
    g->max_level = -1;
    for (size_t s = 0; s < g->n; s++) {
        if (s != x && (int)g->nodes[s].level > g->max_level) {
            g->ep = (uint32_t)s;
            g->max_level = g->nodes[s].level;
        }
    }
}

/* Reconnect node a, which has no link on level l, to its nearest nodes on l
 * found by a search. The search starts from a's neighbour on a higher level
 * if it has one (near a, and never a itself), else from the entry point.
 * `avoid` is the node being unlinked: it still has its level but must not be
 * linked again. */
static void reconnect(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t a, int l,
                      uint32_t avoid)
{
    struct fl__hnsw_scratch *sc = &g->wsc;
    struct probe p = probe_floats(fl__hnsw_row(v, a));
    uint32_t cur = NONE;
    for (int k = l + 1; k <= g->nodes[a].level && cur == NONE; k++) {
        const uint32_t *lk = links(g, a, k);
        if (lk[0] > 0)
            cur = lk[1];
    }
    if (cur == NONE && g->ep != NONE && g->ep != a) {
        /* a has no link above l either, so no search above l can reach it. */
        float d = pdist(v, &p, g->ep);
        cur = g->ep;
        for (int k = g->max_level; k > l; k--)
            greedy(g, v, &p, k, &cur, &d);
    }
    for (size_t s = 0; s < g->n && cur == NONE; s++) {
        if (s != a && s != avoid && g->nodes[s].level >= l)
            cur = (uint32_t)s; /* a is the entry point: any other node on l (rare) */
    }
    if (cur == NONE)
        return;
    size_t len = beam_from(g, v, sc, &p, l, g->m0, cur, pdist(v, &p, cur), a);
    for (size_t i = 0; i < len && links(g, a, l)[0] == 0; i++) {
        if (sc->list[i].s != a && sc->list[i].s != avoid)
            connect(g, v, a, sc->list[i].s, sc->list[i].d, l, true);
    }
}

static int cmp_pair(const void *x, const void *y)
{
    const struct pair *p = x, *r = y;
    return p->d < r->d ? -1 : p->d > r->d;
}

/* Remove every link of x and repair its former neighbours. */
void fl__hnsw_unlink(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t x)
{
    uint32_t nb[2 * FL__HNSW_M_MAX];
    struct pair *pairs = g->pairs;
    int top = g->nodes[x].level;
    if (g->ep == x)
        choose_entry(g, x);
    for (int l = top; l >= 0; l--) {
        uint32_t *lx = links(g, x, l);
        uint32_t cnt = lx[0];
        size_t np = 0;
        memcpy(nb, lx + 1, cnt * sizeof(uint32_t));
        for (uint32_t i = 0; i < cnt; i++)
            drop_link(links(g, nb[i], l), x);
        lx[0] = 0;
        for (uint32_t i = 0; i < cnt; i++) {
            const float *ri = fl__hnsw_row(v, nb[i]);
            for (uint32_t j = i + 1; j < cnt; j++)
                pairs[np++] = (struct pair){gdist(v, ri, fl__hnsw_row(v, nb[j])), nb[i], nb[j]};
        }
        qsort(pairs, np, sizeof(*pairs), cmp_pair);
        for (size_t p = 0; p < np; p++) {
            uint32_t *la = links(g, pairs[p].a, l), *lb = links(g, pairs[p].b, l);
            if (la[0] < cap_at(g, l) && lb[0] < cap_at(g, l) && !has_link(la, pairs[p].b))
                link_pair(g, pairs[p].a, pairs[p].b, l);
        }
        for (uint32_t i = 0; i < cnt; i++) {
            if (links(g, nb[i], l)[0] == 0)
                reconnect(g, v, nb[i], l, x);
        }
    }
}

void fl__hnsw_remove(struct fl__hnsw *g, const struct fl__hnsw_vecs *v, uint32_t x)
{
    uint32_t last = (uint32_t)(g->n - 1);
    FL_ASSERT(x < g->n && g->n_prepared == 0);
    fl__hnsw_unlink(g, v, x);
    node_release(g, x);
    if (x != last) {
        /* Relabel last as x: its neighbours are exactly the lists naming it. */
        struct node *nl = &g->nodes[last];
        for (int l = 0; l <= nl->level; l++) {
            const uint32_t *ll = links(g, last, l);
            for (uint32_t j = 1; j <= ll[0]; j++) {
                uint32_t *lt = links(g, ll[j], l);
                for (uint32_t k = 1; k <= lt[0]; k++) {
                    if (lt[k] == last)
                        lt[k] = x;
                }
            }
        }
        memcpy(links(g, x, 0), links(g, last, 0), (g->m0 + 1) * sizeof(uint32_t));
        g->nodes[x] = *nl;
        nl->upper = NULL;
        nl->level = 0;
        if (g->ep == last)
            g->ep = x;
    }
    g->n--;
    if (g->n == 0) {
        g->ep = NONE;
        g->max_level = -1;
    }
}

/* ================================= Search ================================= */

struct fl__hnsw_scratch *fl__hnsw_scratch_get(struct fl__hnsw *g, size_t ef)
{
    struct fl__hnsw_scratch *sc;
    pthread_mutex_lock(&g->pool_lock);
    sc = g->pool;
    if (sc) {
        g->pool = sc->next;
        g->pool_bytes -= scratch_bytes(sc) + sizeof(*sc);
    }
    pthread_mutex_unlock(&g->pool_lock);
    if (!sc) {
        sc = fl_calloc(1, sizeof(*sc));
        if (!sc)
            return NULL;
    }
    if (!scratch_grow(sc, g->n, ef + 1)) {
        scratch_fini(sc);
        fl_free(sc);
        return NULL;
    }
    return sc;
}

void fl__hnsw_scratch_put(struct fl__hnsw *g, struct fl__hnsw_scratch *sc)
{
    pthread_mutex_lock(&g->pool_lock);
    sc->next = g->pool;
    g->pool = sc;
    g->pool_bytes += scratch_bytes(sc) + sizeof(*sc);
    pthread_mutex_unlock(&g->pool_lock);
}

static int cand_cmp(const void *a, const void *b)
{
    const struct fl__hnsw_cand *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return (x->s > y->s) - (x->s < y->s);
}

size_t fl__hnsw_search(const struct fl__hnsw *g, const struct fl__hnsw_vecs *v,
                       struct fl__hnsw_scratch *sc, const float *q, size_t ef, size_t rerank,
                       const struct fl__hnsw_cand **out)
{
    *out = sc->out;
    if (g->ep == NONE)
        return 0;
    FL_ASSERT(ef >= 1 && ef < sc->lcap && sc->vcap >= g->n && rerank >= 1);
    struct probe p = probe_floats(q);
    if (v->qdot) {
        p.codes = true;
        if (!v->neg) {
            double qq = 0.0;
            for (size_t i = 0; i < v->dim; i++)
                qq += (double)q[i] * q[i];
            p.qq = (float)qq;
        }
    }
    uint32_t cur = g->ep;
    float dcur = pdist(v, &p, cur);
    for (int l = g->max_level; l > 0; l--)
        greedy(g, v, &p, l, &cur, &dcur);
    size_t len = beam_from(g, v, sc, &p, 0, ef, cur, dcur, NONE);
    /* The walk's best `rerank` with their float distances (the walk's own
     * when it used the floats), best first. */
    len = FL_MIN(len, rerank);
    for (size_t i = 0; i < len; i++) {
        uint32_t s = sc->list[i].s;
        float d = p.codes ? gdist(v, q, fl__hnsw_row(v, s)) : sc->list[i].d;
        sc->out[i] = (struct fl__hnsw_cand){.d = d, .s = s};
    }
    if (p.codes)
        qsort(sc->out, len, sizeof(*sc->out), cand_cmp);
    return len;
}

/* ============================ Invariant check ============================ */

enum fl_status fl__hnsw_check(const struct fl__hnsw *g, bool reachable, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    uint32_t *tag = NULL, *queue = NULL, epoch = 0;
    int top = -1;
    if (g->n == 0) {
        if (g->ep != NONE || g->max_level != -1)
            return fl_err_set(err, FL_ERR_CORRUPT, "graph: empty but has an entry point");
        return FL_OK;
    }
    if (g->ep >= g->n || g->max_level != g->nodes[g->ep].level)
        return fl_err_set(err, FL_ERR_CORRUPT, "graph: bad entry point");
    tag = fl_calloc(g->n, sizeof(*tag));
    if (!tag)
        return fl_err_set(err, FL_ERR_NOMEM, "graph: out of memory for the check");
    for (size_t s = 0; s < g->n; s++) {
        int lev = g->nodes[s].level;
        if (lev > top)
            top = lev;
        for (int l = 0; l <= lev; l++) {
            const uint32_t *lst = links(g, (uint32_t)s, l);
            if (lst[0] > cap_at(g, l)) {
                rc = fl_err_set(err, FL_ERR_CORRUPT, "graph: node %zu level %d has %u links", s, l,
                                lst[0]);
                goto out;
            }
            epoch++;
            for (uint32_t j = 1; j <= lst[0]; j++) {
                uint32_t t = lst[j];
                if (t >= g->n || t == s || tag[t] == epoch || g->nodes[t].level < l ||
                    !has_link(links(g, t, l), (uint32_t)s)) {
                    rc = fl_err_set(err, FL_ERR_CORRUPT, "graph: node %zu level %d: bad link to %u",
                                    s, l, t);
                    goto out;
                }
                tag[t] = epoch;
            }
        }
    }
    if (top != g->max_level) {
        rc = fl_err_set(err, FL_ERR_CORRUPT, "graph: entry point not on the top level");
        goto out;
    }
    if (reachable) {
        size_t head = 0, tail = 0;
        queue = fl_malloc(g->n * sizeof(*queue));
        if (!queue) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "graph: out of memory for the check");
            goto out;
        }
        memset(tag, 0, g->n * sizeof(*tag));
        queue[tail++] = g->ep;
        tag[g->ep] = 1;
        while (head < tail) {
            const uint32_t *lst = links(g, queue[head++], 0);
            for (uint32_t j = 1; j <= lst[0]; j++) {
                if (!tag[lst[j]]) {
                    tag[lst[j]] = 1;
                    queue[tail++] = lst[j];
                }
            }
        }
        if (tail != g->n)
            rc = fl_err_set(err, FL_ERR_CORRUPT, "graph: %zu of %zu nodes unreachable", g->n - tail,
                            g->n);
    }
out:
    fl_free(tag);
    fl_free(queue);
    return rc;
}

/* =============================== Snapshot =============================== */

static enum fl_status put_u32(struct fl_buf *b, uint32_t x, struct fl_err *err)
{
    uint8_t p[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
    return fl_buf_append(b, p, 4, err);
}

static enum fl_status put_u64(struct fl_buf *b, uint64_t x, struct fl_err *err)
{
    enum fl_status rc = put_u32(b, (uint32_t)x, err);
    return rc == FL_OK ? put_u32(b, (uint32_t)(x >> 32), err) : rc;
}

static bool get_u32(const uint8_t *p, size_t n, size_t *off, uint32_t *x)
{
    if (n - *off < 4)
        return false;
    p += *off;
    *x = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    *off += 4;
    return true;
}

static bool get_u64(const uint8_t *p, size_t n, size_t *off, uint64_t *x)
{
    uint32_t lo, hi;
    if (!get_u32(p, n, off, &lo) || !get_u32(p, n, off, &hi))
        return false;
    *x = (uint64_t)hi << 32 | lo;
    return true;
}

/* Graph section: m, ef_construction, rng state (4 x u64), entry point,
 * max_level + 1, then per node: level, and per level a count and the links. */
enum fl_status fl__hnsw_serialize(const struct fl__hnsw *g, struct fl_buf *b, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
#define PUT32(x)                                                                                   \
    do {                                                                                           \
        if ((rc = put_u32(b, (x), err)) != FL_OK)                                                  \
            return rc;                                                                             \
    } while (0)
    PUT32(g->m);
    PUT32(g->ef_construction);
    for (int i = 0; i < 4; i++) {
        if ((rc = put_u64(b, g->rng.s[i], err)) != FL_OK)
            return rc;
    }
    PUT32(g->ep);
    PUT32((uint32_t)(g->max_level + 1));
    for (size_t s = 0; s < g->n; s++) {
        int lev = g->nodes[s].level;
        PUT32((uint32_t)lev);
        for (int l = 0; l <= lev; l++) {
            const uint32_t *lst = links(g, (uint32_t)s, l);
            for (uint32_t j = 0; j <= lst[0]; j++)
                PUT32(lst[j]);
        }
    }
#undef PUT32
    return rc;
}

struct fl__hnsw *fl__hnsw_deserialize(const uint8_t *p, size_t n, size_t *off, size_t n_nodes,
                                      struct fl_err *err)
{
    struct fl__hnsw *g = NULL;
    uint32_t m, efc, ep, ml1, x;
    uint64_t rs[4];
    if (!get_u32(p, n, off, &m) || !get_u32(p, n, off, &efc))
        goto corrupt;
    if (m < 2 || m > FL__HNSW_M_MAX || efc < 1 || efc > FL_INDEX_EF_MAX)
        goto corrupt;
    for (int i = 0; i < 4; i++) {
        if (!get_u64(p, n, off, &rs[i]))
            goto corrupt;
    }
    if (!get_u32(p, n, off, &ep) || !get_u32(p, n, off, &ml1))
        goto corrupt;
    if (n_nodes >= NONE || ml1 > FL__HNSW_MAX_LEVEL + 1 || (n_nodes == 0) != (ep == NONE) ||
        (ep != NONE && ep >= n_nodes))
        goto corrupt;
    /* Each node needs at least 8 bytes (level and a level-0 count): bound
     * n_nodes by the input before allocating for it. */
    if (n_nodes > (n - *off) / 8)
        goto corrupt;
    g = fl__hnsw_new(m, efc, 0, err);
    if (!g)
        return NULL;
    g->rng.s[0] = rs[0];
    g->rng.s[1] = rs[1];
    g->rng.s[2] = rs[2];
    g->rng.s[3] = rs[3];
    if (fl__hnsw_reserve(g, n_nodes, err) != FL_OK)
        goto fail;
    for (size_t s = 0; s < n_nodes; s++) {
        if (!get_u32(p, n, off, &x) || x > FL__HNSW_MAX_LEVEL)
            goto corrupt;
        if (!node_init(g, (uint32_t)s, (int)x)) {
            fl_err_set(err, FL_ERR_NOMEM, "index: out of memory loading the graph");
            goto fail;
        }
        g->n = s + 1; /* so fl__hnsw_free releases it on error */
        for (int l = 0; l <= (int)x; l++) {
            uint32_t *lst = links(g, (uint32_t)s, l), cnt;
            if (!get_u32(p, n, off, &cnt) || cnt > cap_at(g, l))
                goto corrupt;
            for (uint32_t j = 1; j <= cnt; j++) {
                if (!get_u32(p, n, off, &lst[j]) || lst[j] >= n_nodes)
                    goto corrupt;
            }
            lst[0] = cnt;
        }
    }
    g->ep = ep;
    g->max_level = (int)ml1 - 1;
    if (fl__hnsw_check(g, false, err) != FL_OK)
        goto fail;
    return g;
corrupt:
    fl_err_set(err, FL_ERR_CORRUPT, "index snapshot: malformed graph section");
fail:
    fl__hnsw_free(g);
    return NULL;
}
