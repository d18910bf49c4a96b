#!/usr/bin/env python3
"""owner_export.py: `facelink export` / `facelink import` as a user runs them,
and the export opened by other tools:

  - a collection is built through `facelink serve` (plain HTTP on loopback,
    unsigned), then the server is stopped;
  - `facelink export` writes manifest.json, faces.jsonl, embeddings.npy,
    users.jsonl, pgvector.sql and crops/;
  - embeddings.npy, opened with NumPy (Debian python3-numpy), holds exactly
    the vectors `facelink embeddings` (GetFaceEmbeddings) returns, in
    faces.jsonl order, and faces.jsonl's base64 vectors are the same bytes;
  - `facelink import` into a fresh data dir, and again (idempotent), then a
    second export: every file identical (the manifest apart from its time);
    `facelink search-vector` answers the same on both; `facelink reindex`
    moves the imported copy to MobileFaceNet (its crops came with it);
  - pgvector.sql loads into a PostgreSQL started here under /tmp as user
    nobody (skipped when the binaries or runuser are missing): pgvector
    column when the extension exists, real[] otherwise; the loaded vectors
    equal the npy rows.
Prints TAP lines and "tests: P passed, F failed, S skipped".
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# NumPy is Debian's python3-numpy: if this interpreter (a pyenv shim, say)
# does not have it, run again under the system Python that does.
try:
    import numpy  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3") and not os.environ.get("FL_REEXEC"):
        os.environ["FL_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "helpers"))
from tap import done, free_port, report  # noqa: E402
BIN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "facelink")
DIM = 320  # the default model (fused: dlib 128 + MobileFaceNet 192)
DEMO = os.path.join(ROOT, "models", "face-api", "demo")
PG = "/usr/lib/postgresql/15/bin"


def cli(*args, stdin=None, env=None):
    r = subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True,
                       cwd=ROOT, timeout=300, env=None if env is None else {**os.environ, **env})
    return r.returncode, r.stdout, r.stderr


class Server:
    def __init__(self, data_dir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACELINK_")}
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", data_dir,
             "--workers", "2", "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        for _ in range(200):
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def call(self, op, body, prefix="RekognitionService"):
        req = urllib.request.Request(
            self.url + "/", data=json.dumps(body).encode(), method="POST",
            headers={"X-Amz-Target": f"{prefix}.{op}",
                     "Content-Type": "application/x-amz-json-1.1"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{op}: {e.read().decode()}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def build_collection(data_dir):
    """Collection 'fam': sample1..4 indexed with ExternalImageIds, two users."""
    s = Server(data_dir)
    try:
        s.call("CreateCollection", {"CollectionId": "fam"})
        for i in range(1, 5):
            with open(os.path.join(DEMO, f"sample{i}.jpg"), "rb") as f:
                img = base64.b64encode(f.read()).decode()
            s.call("IndexFaces", {"CollectionId": "fam", "ExternalImageId": f"photo-{i}",
                                  "Image": {"Bytes": img}})
        faces = s.call("ListFaces", {"CollectionId": "fam"})["Faces"]
        for u in range(2):
            s.call("CreateUser", {"CollectionId": "fam", "UserId": f"user-{u}"})
            s.call("AssociateFaces", {"CollectionId": "fam", "UserId": f"user-{u}",
                                      "FaceIds": [faces[u]["FaceId"]]})
        return len(faces)
    finally:
        s.stop()


def read_files(d):
    out = {}
    for base, _, names in os.walk(d):
        for n in names:
            p = os.path.join(base, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, d)] = f.read()
    return out


def pg_load(sql_path, dim):
    """Load pgvector.sql into a throw-away PostgreSQL; (column type, rows) or a skip reason."""
    if not os.path.exists(os.path.join(PG, "initdb")) or not shutil.which("runuser"):
        return None, "PostgreSQL 15 binaries or runuser missing"
    as_user = [] if os.geteuid() != 0 else ["runuser", "-u", "nobody", "--"]
    d = tempfile.mkdtemp(prefix="fl-pg-")
    os.chmod(d, 0o777)
    port = free_port()
    try:
        subprocess.run(as_user + [f"{PG}/initdb", "-D", f"{d}/data", "-A", "trust", "-U", "fl"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run(as_user + [f"{PG}/pg_ctl", "-D", f"{d}/data", "-l", f"{d}/log", "-w",
                                  "-o", f"-k {d} -p {port} -c listen_addresses=''", "start"],
                       check=True, capture_output=True, timeout=120)
        try:
            psql = as_user + [f"{PG}/psql", "-h", d, "-p", str(port), "-U", "fl", "-d",
                              "postgres", "-v", "ON_ERROR_STOP=1", "-X", "-q"]
            with open(sql_path, "rb") as f:
                r = subprocess.run(psql + ["-f", "-"], stdin=f, capture_output=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(r.stderr.decode())
            r = subprocess.run(psql + ["-At", "-F", "\t", "-c",
                                       "SELECT face_id, pg_typeof(embedding), embedding::text "
                                       "FROM facelink_faces ORDER BY face_id"],
                               capture_output=True, text=True, timeout=60, check=True)
            rows = [line.split("\t") for line in r.stdout.splitlines()]
            return rows, None
        finally:
            subprocess.run(as_user + [f"{PG}/pg_ctl", "-D", f"{d}/data", "-m", "fast", "stop"],
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    if not os.access(BIN, os.X_OK):
        report("facelink built", False, skip=f"{BIN} not built")
        done()
    if not os.path.exists(os.path.join(ROOT, "models", "face-api", "model")):
        report("models present", False, skip="models absent (run scripts/setup)")
        done()
    try:
        import numpy as np
    except ImportError:
        np = None
    tmp = tempfile.mkdtemp(prefix="fl-owner-export-")
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    exp, exp2 = os.path.join(tmp, "exp"), os.path.join(tmp, "exp2")
    try:
        n = build_collection(a)
        rc, out, err = cli("export", "fam", exp, "--data-dir", a)
        names = sorted(os.listdir(exp)) if rc == 0 else []
        report("facelink export writes the files of DESIGN.md §8",
               rc == 0 and names == ["crops", "embeddings.npy", "faces.jsonl", "manifest.json",
                                     "pgvector.sql", "users.jsonl"]
               and len(os.listdir(os.path.join(exp, "crops"))) == n, f"{rc} {names} {err}")
        with open(os.path.join(exp, "manifest.json")) as f:
            man = json.load(f)
        fm = man["FaceModel"]
        report("manifest: provenance, dimension, metric, normalisation, alignment, calibration",
               fm["Id"].startswith("fused") and fm["Dimension"] == DIM and fm["Metric"] and
               "Normalized" in fm and fm["Alignment"] and
               len(man["Calibration"]["Distance"]) == len(man["Calibration"]["Similarity"]) > 10
               and man["Counts"]["Faces"] == n and man["Counts"]["Users"] == 2, man)
        with open(os.path.join(exp, "faces.jsonl")) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        ids = [x["FaceId"] for x in lines]
        rc, out, err = cli("embeddings", "fam", *ids, "--data-dir", a)
        got = json.loads(out)["Faces"] if rc == 0 else []
        if np is None:
            report("numpy opens embeddings.npy", False, skip="python3-numpy missing")
        else:
            arr = np.load(os.path.join(exp, "embeddings.npy"))
            report(f"numpy opens embeddings.npy: (N, {DIM}) float32",
                   arr.shape == (n, DIM) and arr.dtype == np.float32, f"{arr.shape} {arr.dtype}")
            api = np.array([g["Embedding"] for g in got], dtype=np.float32)
            report("embeddings.npy == GetFaceEmbeddings (bit for bit, faces.jsonl order)",
                   api.shape == arr.shape and np.array_equal(api, arr)
                   and [g["Face"]["FaceId"] for g in got] == ids, f"{rc} {err}")
            b64 = np.stack([np.frombuffer(base64.b64decode(x["Embedding"]), dtype="<f4")
                            for x in lines])
            report("faces.jsonl Embedding (base64 LE float32) == embeddings.npy",
                   np.array_equal(b64, arr))
        rc, out, err = cli("import", exp, "--data-dir", b)
        r = json.loads(out) if rc == 0 else {}
        report("facelink import into a fresh data dir",
               r.get("FacesImported") == n and r.get("UsersCreated") == 2, f"{rc} {out} {err}")
        rc, out, err = cli("import", exp, "--data-dir", b)
        r = json.loads(out) if rc == 0 else {}
        report("facelink import again: idempotent",
               r.get("FacesImported") == 0 and r.get("FacesAlreadyPresent") == n, f"{out} {err}")
        rc, out, err = cli("export", "fam", exp2, "--data-dir", b)
        f1, f2 = read_files(exp), read_files(exp2)
        m1, m2 = json.loads(f1.pop("manifest.json")), json.loads(f2.pop("manifest.json"))
        m1.pop("ExportedAt")
        m2.pop("ExportedAt")
        # the snapshot point is a position in each store's change log
        s1, s2 = m1.pop("Snapshot", {}), m2.pop("Snapshot", {})
        diff = [k for k in set(f1) | set(f2) if f1.get(k) != f2.get(k)]
        report("export -> import -> export is lossless (every file equal)",
               rc == 0 and not diff and m1 == m2 and s1.get("PointInTime") is True
               and s2.get("PointInTime") is True, f"{err} differs: {diff[:5]}")
        # pages of 3 faces: the same files, and an import in pages
        exp3, c = os.path.join(tmp, "exp3"), os.path.join(tmp, "c")
        small = {"FACELINK_PAGE_SIZE": "3"}
        rc, out, err = cli("export", "fam", exp3, "--data-dir", a, env=small)
        f3 = read_files(exp3) if rc == 0 else {}
        m3 = json.loads(f3.pop("manifest.json", b"{}"))
        m3.pop("ExportedAt", None)
        m3.pop("Snapshot", None)
        diff = [k for k in set(f1) | set(f3) if f1.get(k) != f3.get(k)]
        report("export in pages of 3 faces writes the same files",
               rc == 0 and not diff and m3 == m1, f"{rc} {err} differs: {diff[:5]}")
        rc, out, err = cli("import", exp3, "--data-dir", c, env=small)
        r = json.loads(out) if rc == 0 else {}
        rc2, out2, _ = cli("export", "fam", os.path.join(tmp, "exp4"), "--data-dir", c)
        f4 = read_files(os.path.join(tmp, "exp4")) if rc2 == 0 else {}
        f4.pop("manifest.json", None)
        report("import in pages of 3 faces: all faces, then the same export",
               r.get("FacesImported") == n and r.get("UsersCreated") == 2 and f4 == f1,
               f"{rc} {out} {err}")
        # an import that fails half-way (the last face's crop cannot be read, after
        # some pages were staged) is aborted: the target stays untouched; fixed, it works
        exp5, d5 = os.path.join(tmp, "exp5"), os.path.join(tmp, "d5")
        shutil.copytree(exp3, exp5)
        with open(os.path.join(exp5, "faces.jsonl")) as f:
            last = [json.loads(x) for x in f if x.strip()][-1]
        crop = os.path.join(exp5, last["Crop"])
        shutil.move(crop, crop + ".saved")
        os.mkdir(crop)
        rc, out, err = cli("import", exp5, "--data-dir", d5, env=small)
        rc2, out2, err2 = cli("embeddings", "fam", ids[0], "--data-dir", d5)
        report("an import failing half-way is aborted and leaves the target untouched",
               rc == 1 and "aborted; nothing was imported" in err and rc2 != 0
               and "ResourceNotFoundException" in err2, f"{rc} {err} / {rc2} {out2} {err2}")
        os.rmdir(crop)
        shutil.move(crop + ".saved", crop)
        rc, out, err = cli("import", exp5, "--data-dir", d5, env=small)
        r = json.loads(out) if rc == 0 else {}
        report("the same import, run again, imports everything",
               r.get("FacesImported") == n and r.get("UsersCreated") == 2, f"{rc} {out} {err}")
        vec = json.dumps(got[0]["Embedding"]) if got else "[]"
        ra = cli("search-vector", "fam", "-", "--threshold", "0", "--data-dir", a, stdin=vec)
        rb = cli("search-vector", "fam", "-", "--threshold", "0", "--data-dir", b, stdin=vec)
        report("search-vector answers the same before and after the round trip",
               ra[0] == 0 and ra[1] == rb[1] and len(json.loads(ra[1])["FaceMatches"]) == n,
               f"{ra[2]} {rb[2]}")
        # facelink reindex on the imported copy: the crops travelled with it
        rc, out, err = cli("reindex", "fam", "--model", "mobilefacenet", "--data-dir", b)
        r = json.loads(out) if rc == 0 else {}
        report("facelink reindex on the imported collection (progress bar, SUCCEEDED)",
               rc == 0 and r.get("Status") == "SUCCEEDED" and "100.0%" in err, f"{rc} {err}")
        job = err.split("\n")[0].split(" ")[-1] if err.startswith("job ") else "?"
        rc, out, err2 = cli("job", job, "--data-dir", b)
        j = json.loads(out) if rc == 0 else {}
        report("facelink job shows the finished job (DescribeJob)",
               j.get("Status") == "SUCCEEDED" and j.get("Progress") == 100 and
               j.get("JobType") == "reindex", f"{rc} {out} {err2}")
        rc, out, err = cli("embeddings", "fam", ids[0], "--data-dir", b)
        e = json.loads(out) if rc == 0 else {}
        report("after reindex: same FaceIds, 192-d MobileFaceNet vectors",
               rc == 0 and len(e["Faces"]) == 1 and len(e["Faces"][0]["Embedding"]) == 192
               and e["FaceModel"]["Dimension"] == 192, f"{rc} {err}")
        rows, why = None, None
        try:
            rows, why = pg_load(os.path.join(exp, "pgvector.sql"), DIM)
        except Exception as e:  # a PostgreSQL that cannot start here is a skip, a bad script a failure
            if isinstance(e, RuntimeError):
                report("pgvector.sql loads into PostgreSQL", False, str(e))
            else:
                why = f"PostgreSQL could not be started: {e}"
        if why:
            report("pgvector.sql loads into PostgreSQL", False, skip=why)
        elif rows is not None:
            types = {r[1] for r in rows}
            ok = len(rows) == n and types <= {"vector", "real[]"}
            if ok and np is not None:
                by_id = {r[0]: np.array(json.loads(r[2].replace("{", "[").replace("}", "]")),
                                        dtype=np.float32) for r in rows}
                ok = all(np.array_equal(by_id[i], arr[k]) for k, i in enumerate(ids))
            report(f"pgvector.sql loads into PostgreSQL ({', '.join(sorted(types))} column), "
                   "vectors equal", ok, f"{len(rows)} rows, types {types}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done()


if __name__ == "__main__":
    main()
