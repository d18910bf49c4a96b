"""tap.py: the TAP output the Python test scripts share (tests/scripts/*.py).

report() prints one "ok N - name" / "not ok N - name" line (with "# SKIP why",
or the failure's detail as "# " lines) and returns ok; done() prints the plan
and the closing line tests/run sums ("tests: P passed, F failed, S skipped")
and exits non-zero on any failure. free_port() is a free loopback TCP port
for a server a script starts."""
import socket
import sys

_results = []


def report(name, ok, detail="", skip=None):
    n = len(_results) + 1
    if skip:
        print(f"ok {n} - {name} # SKIP {skip}")
        _results.append("s")
    elif ok:
        print(f"ok {n} - {name}")
        _results.append("p")
    else:
        print(f"not ok {n} - {name}")
        if detail:
            print("# " + str(detail)[:3000].replace("\n", "\n# "))
        _results.append("f")
    sys.stdout.flush()
    return ok


def done():
    p, f, s = _results.count("p"), _results.count("f"), _results.count("s")
    print(f"1..{len(_results)}")
    print(f"tests: {p} passed, {f} failed, {s} skipped")
    sys.exit(1 if f else 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
