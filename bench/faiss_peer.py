#!/usr/bin/python3
"""faiss_peer.py: FAISS on the same data as bench/bench_hnsw.c (the peer
figures for issue 8). Not a test. Single-threaded (faiss.omp_set_num_threads(1)).

  faiss_peer.py exact DIR [ROUNDS]
      IndexFlatIP over flat_base.npy, k=10, each flat query searched alone
      (nq=1: the per-query latency, comparable to our fl_index_search), median
      milliseconds. Also reports the batched time per query (all queries in
      one call, where FAISS switches to a BLAS matrix product), for reference.
  faiss_peer.py hnsw DIR [M] [EF_CONSTRUCTION]
      IndexHNSWFlat(128, M) with efConstruction, build time, then an efSearch
      sweep: recall@10 against hnsw_gt.npy (our exact top-10; cross-checked
      here against IndexFlatL2) and queries per second, 1000 queries in one
      call (FAISS's natural use; one thread runs them one after another),
      median of 3 passes. Reports the smallest efSearch with recall >= 0.99.

Lines starting with "RESULT " are key value pairs for scripts/bench.
Needs Debian's python3-faiss and python3-numpy (bench/ensure_peers.sh), so it
runs under Debian's /usr/bin/python3.
"""
import sys
import time

import numpy as np

try:
    import faiss
except ImportError:
    sys.exit("faiss_peer.py: python3-faiss is missing (bench/ensure_peers.sh installs it)")

K = 10


def now():
    return time.perf_counter()


def exact(d, rounds):
    xb = np.load(f"{d}/flat_base.npy")
    xq = np.load(f"{d}/flat_queries.npy")
    index = faiss.IndexFlatIP(xb.shape[1])
    index.add(xb)
    del xb
    index.search(xq[:1], K)  # warm-up
    times = []
    for _ in range(rounds):
        for i in range(xq.shape[0]):
            t0 = now()
            index.search(xq[i:i + 1], K)
            times.append((now() - t0) * 1e3)
    ms = float(np.median(times))
    t0 = now()
    index.search(xq, K)
    batched = (now() - t0) * 1e3 / xq.shape[0]
    print(f"faiss exact: {index.ntotal} x {index.d} IndexFlatIP, k={K}, 1 thread, "
          f"faiss {faiss.__version__}")
    print(f"  nq=1 median {ms:.2f} ms per query; batched ({xq.shape[0]} queries, BLAS) "
          f"{batched:.2f} ms per query")
    print(f"RESULT faiss_exact_ms {ms:.4f}")
    print(f"RESULT faiss_exact_batched_ms {batched:.4f}")


def hnsw(d, m, efc):
    xb = np.load(f"{d}/hnsw_base.npy")
    xq = np.load(f"{d}/hnsw_queries.npy")
    gt = np.load(f"{d}/hnsw_gt.npy")
    # Cross-check our ground truth with FAISS's own exact search.
    flat = faiss.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    _, fgt = flat.search(xq, K)
    del flat
    agree = np.mean([len(set(a) & set(b)) / K for a, b in zip(fgt, gt)])
    index = faiss.IndexHNSWFlat(xb.shape[1], m)
    index.hnsw.efConstruction = efc
    t0 = now()
    index.add(xb)
    build = now() - t0
    print(f"faiss hnsw: {index.ntotal} x {index.d} IndexHNSWFlat, M {m}, efConstruction {efc}, "
          f"build {build:.2f} s (1 thread), ground truth agreement with IndexFlatL2 {agree:.4f}")
    print(f"RESULT faiss_build_s {build:.3f}")
    reported = False
    for ef in (10, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 384, 512, 768, 1024):
        index.hnsw.efSearch = ef
        ts = []
        for _ in range(3):
            t0 = now()
            _, ids = index.search(xq, K)
            ts.append(now() - t0)
        qps = xq.shape[0] / float(np.median(ts))
        rec = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, gt)]))
        print(f"  efSearch {ef:4d}: recall@10 {rec:.4f}, {qps:.0f} QPS")
        if not reported and rec >= 0.99:
            print(f"RESULT faiss_ef {ef}\nRESULT faiss_recall {rec:.4f}\nRESULT faiss_qps {qps:.1f}")
            reported = True
            if ef >= 64:
                break


def main():
    faiss.omp_set_num_threads(1)
    if len(sys.argv) >= 3 and sys.argv[1] == "exact":
        exact(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    elif len(sys.argv) >= 3 and sys.argv[1] == "hnsw":
        hnsw(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 16,
             int(sys.argv[4]) if len(sys.argv) > 4 else 200)
    else:
        sys.exit("usage: faiss_peer.py exact DIR [ROUNDS] | hnsw DIR [M] [EF_CONSTRUCTION]")


if __name__ == "__main__":
    main()
