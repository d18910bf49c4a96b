/*
 * pattern.c: a tiny matcher for the regular expressions in Rekognition's
 * request model.
 *
 * What: whole-string matching of a request string against a member's
 * "pattern" constraint (CollectionId, FaceId, UserId, ClientRequestToken,
 * tag keys, S3 bucket names...).
 *
 * Why our own: the patterns are Java regexes from the AWS model (e.g.
 * "^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]*$"), which POSIX regcomp cannot take
 * (\p{..}, lookahead), and a general engine (PCRE) would be a new dependency
 * for a dozen fixed patterns. The subset used by the model is small:
 *   - a sequence of atoms, each a literal, an escape, '.', or a bracket class
 *     with ranges, escapes and \p{L} / \p{N} / \p{Z};
 *   - quantifiers + * ? {m} {m,} {m,n} on any atom;
 *   - optional ^ and $ (ignored: the service validates the whole value, as
 *     Java's Matcher.matches() does);
 *   - one leading negative lookahead of a literal, "(?!aws:)".
 * Anything else (groups, alternation) makes the match return -1, so a spec
 * change that needs more syntax fails the spec test instead of passing
 * silently.
 *
 * Unicode: strings are UTF-8 (jansson guarantees valid UTF-8). \p{Z} is exact
 * (the separator code points are few); for \p{L} and \p{N} ASCII is exact and
 * every other non-separator code point is accepted, since we carry no Unicode
 * category tables. Non-ASCII symbols and punctuation in tag keys are
 * therefore accepted where the real service would reject them.
 *
 * Invariants: no allocation; recursion depth is bounded by the number of
 * atoms (PAT_MAX_ATOMS); greedy matching with backtracking one code point at
 * a time.
 *
 * Threading: pure functions.
 */
#include "api/spec.h"

#include <string.h>

#define PAT_MAX_ATOMS     32
#define PAT_MAX_LOOKAHEAD 16
#define PAT_REP_INF       0x7fffffff

struct pat_atom {
    uint8_t ascii[16]; /* bit per ASCII code point */
    bool any;          /* '.' */
    bool negated;      /* [^...] */
    bool uni_l, uni_n, uni_z;
    int rep_min, rep_max;
};

struct pat {
    struct pat_atom atoms[PAT_MAX_ATOMS];
    int n_atoms;
    char lookahead[PAT_MAX_LOOKAHEAD + 1]; /* forbidden literal prefix ("" if none) */
};

static void set_ascii(struct pat_atom *a, unsigned c)
{
    if (c < 128)
        a->ascii[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static void set_range(struct pat_atom *a, unsigned lo, unsigned hi)
{
    for (unsigned c = lo; c <= hi && c < 128; c++)
        set_ascii(a, c);
}

/* Apply an escape (the char after '\\') to a class atom; *pp points after it.
 * Returns the literal code point, or -2 for a class escape, or -1 on
 * unsupported syntax. */
static int apply_escape(struct pat_atom *a, const char **pp)
{
    const char *p = *pp;
    char c = *p;
    if (c == 'p') {
        if (p[1] != '{' || !p[2] || p[3] != '}')
            return -1;
        if (p[2] == 'L')
            a->uni_l = true;
        else if (p[2] == 'N')
            a->uni_n = true;
        else if (p[2] == 'Z')
            a->uni_z = true;
        else
            return -1;
        if (p[2] == 'L') {
            set_range(a, 'a', 'z');
            set_range(a, 'A', 'Z');
        } else if (p[2] == 'N') {
            set_range(a, '0', '9');
        } else {
            set_ascii(a, ' ');
        }
        *pp = p + 4;
        return -2;
    }
    if (c == 'd') {
        set_range(a, '0', '9');
        *pp = p + 1;
        return -2;
    }
    if (c == 'w') {
        set_range(a, 'a', 'z');
        set_range(a, 'A', 'Z');
        set_range(a, '0', '9');
        set_ascii(a, '_');
        *pp = p + 1;
        return -2;
    }
    if (c == 's') {
        set_ascii(a, ' ');
        set_range(a, '\t', '\r');
        *pp = p + 1;
        return -2;
    }
    if (!c || (unsigned char)c >= 128 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return -1; /* unknown letter escapes, back-references */
    *pp = p + 1;
    return (unsigned char)c;
}

/* Parse a bracket class starting after '['; *pp ends after ']'. */
static bool parse_class(struct pat_atom *a, const char **pp)
{
    const char *p = *pp;
    bool first = true;
    int prev = -1; /* last single char, eligible as a range start */
    if (*p == '^') {
        a->negated = true;
        p++;
    }
    for (;;) {
        int c;
        if (!*p)
            return false;
        if (*p == ']' && !first)
            break;
        first = false;
        if (*p == '-' && prev >= 0 && p[1] && p[1] != ']') {
            /* a range prev-hi */
            int hi;
            p++;
            if (*p == '\\') {
                p++;
                hi = apply_escape(a, &p);
                if (hi < 0)
                    return false;
            } else if ((unsigned char)*p >= 128) {
                return false;
            } else {
                hi = (unsigned char)*p++;
            }
            if (hi < prev)
                return false;
            set_range(a, (unsigned)prev, (unsigned)hi);
            prev = -1; /* a '-' right after a range is a literal (Java) */
            continue;
        }
        if (*p == '\\') {
            p++;
            c = apply_escape(a, &p);
            if (c == -1)
                return false;
            if (c >= 0)
                set_ascii(a, (unsigned)c);
            prev = c >= 0 ? c : -1;
            continue;
        }
        if (*p == '[' || (unsigned char)*p >= 128)
            return false; /* nested classes, non-ASCII literals: not in the subset */
        c = (unsigned char)*p++;
        set_ascii(a, (unsigned)c);
        prev = c;
    }
    *pp = p + 1;
    return true;
}

static bool parse_int(const char **pp, int *out)
{
    const char *p = *pp;
    long v = 0;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > 100000)
            return false;
        p++;
    }
    *out = (int)v;
    *pp = p;
    return true;
}

static bool parse_quant(struct pat_atom *a, const char **pp)
{
    const char *p = *pp;
    a->rep_min = a->rep_max = 1;
    if (*p == '+') {
        a->rep_max = PAT_REP_INF;
        p++;
    } else if (*p == '*') {
        a->rep_min = 0;
        a->rep_max = PAT_REP_INF;
        p++;
    } else if (*p == '?') {
        a->rep_min = 0;
        p++;
    } else if (*p == '{') {
        p++;
        if (!parse_int(&p, &a->rep_min))
            return false;
        if (*p == ',') {
            p++;
            if (*p == '}')
                a->rep_max = PAT_REP_INF;
            else if (!parse_int(&p, &a->rep_max))
                return false;
        } else {
            a->rep_max = a->rep_min;
        }
        if (*p != '}' || a->rep_max < a->rep_min)
            return false;
        p++;
    }
    if (*p == '+' || *p == '?' || *p == '*' || *p == '{')
        return false; /* possessive/lazy quantifiers: not in the subset */
    *pp = p;
    return true;
}

static bool compile(const char *src, struct pat *pt)
{
    const char *p = src;
    memset(pt, 0, sizeof(*pt));
    if (*p == '^')
        p++;
    if (strncmp(p, "(?!", 3) == 0) {
        size_t n = 0;
        p += 3;
        while (*p && *p != ')') {
            if (*p == '\\' && p[1])
                p++;
            if (n >= PAT_MAX_LOOKAHEAD || strchr("[](|*+?{.", *p))
                return false;
            pt->lookahead[n++] = *p++;
        }
        if (*p != ')' || n == 0)
            return false;
        pt->lookahead[n] = '\0';
        p++;
    }
    while (*p) {
        struct pat_atom *a;
        if (*p == '$' && p[1] == '\0')
            break;
        if (pt->n_atoms >= PAT_MAX_ATOMS)
            return false;
        a = &pt->atoms[pt->n_atoms++];
        if (*p == '[') {
            p++;
            if (!parse_class(a, &p))
                return false;
        } else if (*p == '.') {
            a->any = true;
            p++;
        } else if (*p == '\\') {
            int c;
            p++;
            c = apply_escape(a, &p);
            if (c == -1)
                return false;
            if (c >= 0)
                set_ascii(a, (unsigned)c);
        } else if (strchr("()|*+?{}^$", *p) || (unsigned char)*p >= 128) {
            return false;
        } else {
            set_ascii(a, (unsigned char)*p);
            p++;
        }
        if (!parse_quant(a, &p))
            return false;
    }
    return true;
}

/* Decode one code point at s (valid or not); *len gets its byte length. */
static uint32_t utf8_next(const char *s, int *len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) {
        *len = 1;
        return u[0];
    }
    if ((u[0] & 0xe0) == 0xc0 && (u[1] & 0xc0) == 0x80) {
        *len = 2;
        return ((uint32_t)(u[0] & 0x1f) << 6) | (u[1] & 0x3f);
    }
    if ((u[0] & 0xf0) == 0xe0 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80) {
        *len = 3;
        return ((uint32_t)(u[0] & 0x0f) << 12) | ((uint32_t)(u[1] & 0x3f) << 6) | (u[2] & 0x3f);
    }
    if ((u[0] & 0xf8) == 0xf0 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80 &&
        (u[3] & 0xc0) == 0x80) {
        *len = 4;
        return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3f) << 12) |
               ((uint32_t)(u[2] & 0x3f) << 6) | (u[3] & 0x3f);
    }
    *len = 1; /* stray byte: one non-ASCII unit */
    return 0xfffd;
}

size_t fl__api_utf8_len(const char *s)
{
    size_t n = 0;
    while (*s) {
        int len;
        utf8_next(s, &len);
        s += len;
        n++;
    }
    return n;
}

static bool is_unicode_z(uint32_t cp)
{
    return cp == 0x20 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

static bool atom_matches(const struct pat_atom *a, uint32_t cp)
{
    bool in;
    if (a->any)
        return cp != '\n' && cp != '\r';
    if (cp < 128)
        in = (a->ascii[cp >> 3] >> (cp & 7)) & 1;
    else if (is_unicode_z(cp))
        in = a->uni_z;
    else
        in = a->uni_l || a->uni_n;
    return a->negated ? !in : in;
}

/* Back up one code point from position p (> start). */
static const char *utf8_prev(const char *start, const char *p)
{
    p--;
    while (p > start && ((unsigned char)*p & 0xc0) == 0x80)
        p--;
    return p;
}

static bool match_from(const struct pat *pt, int i, const char *s)
{
    const struct pat_atom *a;
    const char *start = s, *p = s;
    int n = 0;
    if (i == pt->n_atoms)
        return *s == '\0';
    a = &pt->atoms[i];
    while (n < a->rep_max && *p) {
        int len;
        uint32_t cp = utf8_next(p, &len);
        if (!atom_matches(a, cp))
            break;
        p += len;
        n++;
    }
    for (;;) {
        if (n < a->rep_min)
            return false;
        if (match_from(pt, i + 1, p))
            return true;
        if (n == 0)
            return false;
        p = utf8_prev(start, p);
        n--;
    }
}

int fl__api_pattern_match(const char *pattern, const char *s)
{
    struct pat pt;
    if (!compile(pattern, &pt))
        return -1;
    if (pt.lookahead[0] && strncmp(s, pt.lookahead, strlen(pt.lookahead)) == 0)
        return 0;
    return match_from(&pt, 0, s) ? 1 : 0;
}
