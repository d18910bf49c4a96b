#!/usr/bin/env bash
# bench/ensure_peers.sh: peer libraries the benchmarks compare against, installed
# on demand by scripts/bench (never by scripts/setup: `make test` does not need
# them). Source it and call ensure_faiss; it returns non-zero if FAISS cannot
# be had, and the caller skips the peer figures.

# Debian's python3-faiss (CPU build) and python3-numpy, installed with apt-get
# when missing (as root, or through sudo when it needs no password). They are
# modules of Debian's interpreter, so PEER_PY is /usr/bin/python3 (a pyenv or
# venv python3 earlier in PATH would not see them); callers run the peer
# scripts with "$PEER_PY".
PEER_PY=${PEER_PY:-/usr/bin/python3}

ensure_faiss() {
    if "$PEER_PY" -c 'import faiss, numpy' 2>/dev/null; then
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "ensure_faiss: python3-faiss is missing and apt-get needs root" >&2
            return 1
        fi
    fi
    echo "ensure_faiss: installing python3-faiss python3-numpy" >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q python3-faiss python3-numpy \
        >&2 || return 1
    "$PEER_PY" -c 'import faiss, numpy' 2>/dev/null
}
