#!/usr/bin/env bash
# bench/vector_search.sh: the vector-search section of `make bench` (called by
# scripts/bench; BUILD names the build directory). Our exact scan and HNSW
# (bench/bench_hnsw.c) against FAISS (bench/faiss_peer.py) on the same files,
# generated once into $BUILD/bench-data with fixed seeds. The machine may be
# shared, so our runs and the peer's alternate, FL_BENCH_ROUNDS times (default
# 3 for the exact scan, 2 for HNSW), and the medians of the per-run figures
# are compared. Takes about 15-20 minutes on 2 cores (FAISS's single-threaded
# HNSW build of 200k vectors is ~5 minutes per round).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build}

vector_search() {
    local bin=$B/bench/bench_hnsw data=$B/bench-data log
    local rounds=${FL_BENCH_ROUNDS:-3} hrounds=${FL_BENCH_ROUNDS:-2} peer=1
    if [ ! -x "$bin" ] || [ bench/bench_hnsw.c -nt "$bin" ]; then
        make --no-print-directory -j2 "$B/libfacelink.a" >/dev/null
        mkdir -p "$B/bench"
        # shellcheck disable=SC2046
        cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc \
            bench/bench_hnsw.c "$B/libfacelink.a" $(pkg-config --libs jansson libcrypto) \
            -lm -lpthread -o "$bin"
    fi
    # shellcheck source=bench/ensure_peers.sh
    . bench/ensure_peers.sh
    ensure_faiss || { echo "(FAISS unavailable: peer figures skipped)"; peer=0; }
    "$bin" gen "$data"
    log=$(mktemp)
    echo "== exact scan, 1M x 128, k=10, 1 thread: ours vs the bandwidth floor and FAISS IndexFlatIP"
    for ((r = 1; r <= rounds; r++)); do
        "$bin" exact "$data" 1 | tee -a "$log"
        [ "$peer" = 1 ] && "$PEER_PY" bench/faiss_peer.py exact "$data" 1 | tee -a "$log"
    done
    echo
    echo "== HNSW, 200k x 128 Gaussian mixture, M 16, efConstruction 200, 1 thread: ours vs FAISS IndexHNSWFlat"
    for ((r = 1; r <= hrounds; r++)); do
        "$bin" hnsw "$data" 16 200 | tee -a "$log"
        [ "$peer" = 1 ] && "$PEER_PY" bench/faiss_peer.py hnsw "$data" 16 200 | tee -a "$log"
    done
    echo
    python3 - "$log" <<'PY'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        _, k, v = line.split()
        vals.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in vals.items()}
def row(name, ours, peer, unit, better):
    if ours not in med:
        return
    o = med[ours]
    if peer in med:
        p = med[peer]
        print(f"{name:38s} ours {o:10.2f} {unit:6s} peer {p:10.2f} {unit:6s} ours/peer {o / p:.3f} ({better} is better)")
    else:
        print(f"{name:38s} ours {o:10.2f} {unit}")
print("summary (medians over runs):")
row("exact scan, ms/query vs floor", "ours_exact_ms", "floor_ms", "ms", "lower")
row("exact scan, ms/query vs FAISS nq=1", "ours_exact_ms", "faiss_exact_ms", "ms", "lower")
row("exact scan, ms/query vs FAISS batched", "ours_exact_ms", "faiss_exact_batched_ms", "ms", "lower")
row("HNSW QPS at recall@10 >= 0.99", "ours_qps", "faiss_qps", "q/s", "higher")
row("HNSW efSearch needed", "ours_ef", "faiss_ef", "", "lower")
row("HNSW build time", "ours_build_s", "faiss_build_s", "s", "lower")
PY
    rm -f "$log"
}

vector_search
