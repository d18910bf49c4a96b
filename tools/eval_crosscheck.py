#!/usr/bin/python3
"""eval_crosscheck.py: recompute `facelink eval`'s numbers independently (numpy) from the
embeddings cache, to check the C protocol and calibration code.

    /usr/bin/python3 tools/eval_crosscheck.py build/lfw-embeddings.bin [../shared] [--sweep]
    /usr/bin/python3 tools/eval_crosscheck.py build/lfw-embeddings.bin [../shared] \
        --export-fused OUT.f32

Prints the 10-fold LFW accuracy (brute-force threshold search over every midpoint) per
variant, and the false/true-match rates at the committed calibration anchors for
Similarity 99 and 80 (all pairs, blocked matrix products). Cache layout: eval_set.c.
--export-fused writes the fused vectors of every image that has them (N x 320 float32,
raw) and stops: the real-face input of bench/range_recall.c."""
import os
import re
import sys

import numpy as np

SWEEP = "--sweep" in sys.argv
EXPORT = sys.argv[sys.argv.index("--export-fused") + 1] if "--export-fused" in sys.argv else None
args = [a for a in sys.argv[1:] if a != "--sweep" and a != "--export-fused" and a != EXPORT]
cache = args[0]
shared = args[1] if len(args) > 1 else "../shared"
root = f"{shared}/data/lfw/lfw-deepfunneled-250x250"
people = sorted(d for d in os.listdir(root) if not d.startswith("."))
counts = [len([f for f in os.listdir(f"{root}/{p}") if f.endswith(".jpg")]) for p in people]
first = np.concatenate([[0], np.cumsum(counts)[:-1]])
index = {p: i for i, p in enumerate(people)}
pid = np.repeat(np.arange(len(people)), counts)
n = len(pid)

buf = open(cache, "rb").read()
HEADER = 48  # struct cache_header with its padding
have = np.frombuffer(buf, np.uint8, n, HEADER)
off = HEADER + n
emb = []
for d in (128, 128, 192, 192):
    emb.append(np.frombuffer(buf, np.float32, n * d, off).reshape(n, d).astype(np.float64))
    off += n * d * 4
assert off == len(buf), "cache size does not match the image set"
HAS = [((have >> v) & 1) == 1 for v in range(4)]
# the fused model (src/face/fused.c), rebuilt here from its definition: the flip-averaged dlib
# and MobileFaceNet vectors as unit vectors scaled by sqrt(W) and sqrt(1 - W), concatenated
W = 0.857
HAS.append(HAS[1] & HAS[3])
with np.errstate(invalid="ignore", divide="ignore"):
    emb.append(np.hstack([np.sqrt(W) * emb[1] / np.linalg.norm(emb[1], axis=1, keepdims=True),
                          np.sqrt(1 - W) * emb[3] / np.linalg.norm(emb[3], axis=1, keepdims=True)]))

if EXPORT:
    emb[4][HAS[4]].astype(np.float32).tofile(EXPORT)
    print(f"wrote {HAS[4].sum()} fused vectors to {EXPORT}")
    sys.exit(0)

lines = open(f"{shared}/data/lfw/pairs.txt").read().split("\n")
folds, per = map(int, lines[0].split())
pairs, k = [], 1
for f in range(folds):
    for _ in range(2 * per):
        t = lines[k].split()
        k += 1
        if len(t) == 3:
            pairs.append((first[index[t[0]]] + int(t[1]) - 1, first[index[t[0]]] + int(t[2]) - 1, f, 1))
        else:
            pairs.append((first[index[t[0]]] + int(t[1]) - 1, first[index[t[2]]] + int(t[3]) - 1, f, 0))
pairs = np.array(pairs)


def scores(v):
    a, b = emb[v][pairs[:, 0]], emb[v][pairs[:, 1]]
    ok = HAS[v][pairs[:, 0]] & HAS[v][pairs[:, 1]]
    s = -np.linalg.norm(a - b, axis=1) if v < 2 else -(1 - (a * b).sum(1))
    s[ok == 0] = np.nan
    return s


def protocol(s):
    accs = []
    for f in range(folds):
        tr = (pairs[:, 2] != f) & ~np.isnan(s)
        te = pairs[:, 2] == f
        u = np.unique(s[tr])
        cands = np.concatenate([[u[0] - 1e-6], (u[1:] + u[:-1]) / 2, [u[-1] + 1e-6]])
        correct = [((s[tr] >= t) == (pairs[tr, 3] == 1)).sum() for t in cands]
        t = cands[int(np.argmax(correct))]
        r = s[te]
        accs.append(np.mean(np.where(np.isnan(r), False, (r >= t) == (pairs[te, 3] == 1))))
    return np.mean(accs), np.std(accs)


for v, name in ((0, "dlib"), (1, "dlib flip"), (2, "mobilefacenet"), (3, "mobilefacenet flip"),
                (4, "fused")):
    if HAS[v].sum() == 0:
        continue
    m, sd = protocol(scores(v))
    print(f"LFW {name:20s} {100 * m:.2f}% +- {100 * sd:.2f}%")

if SWEEP:  # the fused model's LFW accuracy at other weights W (docs/internals/eval.md)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = [e / np.linalg.norm(e, axis=1, keepdims=True) for e in (emb[1], emb[3])]
    ok = HAS[4][pairs[:, 0]] & HAS[4][pairs[:, 1]]
    cd = (unit[0][pairs[:, 0]] * unit[0][pairs[:, 1]]).sum(1)
    cm = (unit[1][pairs[:, 0]] * unit[1][pairs[:, 1]]).sum(1)
    print(f"cosine spread over the pairs: dlib {np.std(cd[ok]):.4f}, "
          f"mobilefacenet {np.std(cm[ok]):.4f}")
    for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, W, 0.9):
        sc = np.where(ok, w * cd + (1 - w) * cm, np.nan)
        m, sd = protocol(sc)
        print(f"LFW fused W={w:<5}          {100 * m:.2f}% +- {100 * sd:.2f}%")

table = open(os.path.join(os.path.dirname(__file__), "../src/face/calibration_table.c")).read()
for v, key in ((0, "FL_FACE_MODEL_DLIB"), (2, "FL_FACE_MODEL_MFN"), (4, "FL_FACE_MODEL_FUSED")):
    body = table[table.index(f"[{key}]"):]
    anchors = {float(s): float(d) for d, s in re.findall(r"\{([0-9.e+-]+)f, ([0-9.]+)f,", body)[:8]}
    ths = [anchors[99.0], anchors[80.0]]
    ok = HAS[v]
    X, P = emb[v][ok], pid[ok]
    m = len(P)
    sq = (X * X).sum(1)
    imp, gen, n_imp, n_gen = np.zeros(2), np.zeros(2), 0, 0
    for i0 in range(0, m, 1024):
        G = X[i0:i0 + 1024] @ X.T
        D = np.sqrt(np.maximum(sq[i0:i0 + 1024, None] + sq[None, :] - 2 * G, 0)) if v < 2 else 1 - G
        upper = np.arange(m)[None, :] > np.arange(i0, min(i0 + 1024, m))[:, None]
        same = P[i0:i0 + 1024, None] == P[None, :]
        di, dg = D[upper & ~same], D[upper & same]
        n_imp += di.size
        n_gen += dg.size
        for j, t in enumerate(ths):
            imp[j] += (di <= t).sum()
            gen[j] += (dg <= t).sum()
    for j, s in enumerate((99, 80)):
        print(f"calibration {key}: Similarity {s} at {ths[j]:.4f}: FMR {imp[j] / n_imp:.3g} "
              f"TMR {gen[j] / n_gen:.4f} ({n_imp} / {n_gen} pairs)")
