#!/usr/bin/env python3
"""owner_migrate.py: `facelink migrate` from one running FaceLink to another.

FaceLink A (SigV4 keys required) gets a collection through botocore: sample1
(all faces), sample2 with MaxFaces=1 (so the photo has faces A never
indexed), sample3 under an ExternalImageId without its extension, and sample4
under a name no file has; three users, two with faces. `facelink migrate`
reads A (ListFaces/ListUsers with a page size of 2, so pagination is
exercised; SigV4 with the given keys) and rebuilds the collection in a fresh
data dir B from a folder of the photos. FaceLink B, started on that dir,
must then show: every face A had whose photo was found, at the same place
(IoU > 0.9: the same engine on the same photo), with the same
ExternalImageId; no face A did not have; the same users with the same faces;
the same SearchFaces neighbours; and the report must list sample4's faces as
unmatched. A wrong secret is refused with InvalidSignatureException.
Prints TAP lines and "tests: P passed, F failed, S skipped".
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "helpers"))
from tap import done, free_port, report  # noqa: E402
BIN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "facelink")
DEMO = os.path.join(ROOT, "models", "face-api", "demo")
KEY, SECRET = "AKIDMIGRATE", "migrate-secret/+x"


def start(data_dir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELINK_")}
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, "--workers", "2",
         "--keys", f"{KEY}:{SECRET}", "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def iou(a, b):
    ix = min(a["Left"] + a["Width"], b["Left"] + b["Width"]) - max(a["Left"], b["Left"])
    iy = min(a["Top"] + a["Height"], b["Top"] + b["Height"]) - max(a["Top"], b["Top"])
    inter = ix * iy if ix > 0 and iy > 0 else 0.0
    return inter / (a["Width"] * a["Height"] + b["Width"] * b["Height"] - inter)


def main():
    try:
        import botocore.config
        import botocore.session
    except ImportError as e:
        report("botocore available", False, skip=f"python3-botocore missing ({e})")
        done()
    if not os.access(BIN, os.X_OK):
        report("facelink built", False, skip=f"{BIN} not built")
        done()
    if not os.path.exists(os.path.join(DEMO, "sample1.jpg")):
        report("demo photos", False, skip="models absent (run scripts/setup)")
        done()
    session = botocore.session.get_session()

    def client(url):
        return session.create_client(
            "rekognition", region_name="us-east-1", endpoint_url=url, aws_access_key_id=KEY,
            aws_secret_access_key=SECRET, config=botocore.config.Config(retries={"max_attempts": 1}))

    tmp = tempfile.mkdtemp(prefix="fl-owner-migrate-")
    a_dir, b_dir, photos = (os.path.join(tmp, n) for n in ("a", "b", "photos"))
    os.makedirs(os.path.join(photos, "2019"))
    for i in (1, 2):
        shutil.copy(os.path.join(DEMO, f"sample{i}.jpg"), photos)
    shutil.copy(os.path.join(DEMO, "sample3.jpg"), os.path.join(photos, "2019"))
    procs = []
    try:
        pa, url_a = start(a_dir)
        procs.append(pa)
        ca = client(url_a)
        ca.create_collection(CollectionId="fam")

        def index(i, ext, **kw):
            with open(os.path.join(DEMO, f"sample{i}.jpg"), "rb") as f:
                return ca.index_faces(CollectionId="fam", ExternalImageId=ext,
                                      Image={"Bytes": f.read()}, **kw)["FaceRecords"]
        r1 = index(1, "sample1.jpg")
        r2 = index(2, "sample2.jpg", MaxFaces=1)
        r3 = index(3, "sample3")
        r4 = index(4, "lost-photo.jpg")
        for u in ("alice", "bob", "carol"):
            ca.create_user(CollectionId="fam", UserId=u)
        ca.associate_faces(CollectionId="fam", UserId="alice",
                           FaceIds=[r1[0]["Face"]["FaceId"]], UserMatchThreshold=0)
        ca.associate_faces(CollectionId="fam", UserId="bob",
                           FaceIds=[r3[1]["Face"]["FaceId"], r2[0]["Face"]["FaceId"]],
                           UserMatchThreshold=0)
        fa = ca.list_faces(CollectionId="fam", MaxResults=4096)["Faces"]
        report("collection built on FaceLink A", len(fa) == len(r1) + 1 + len(r3) + len(r4),
               f"{len(fa)} faces")

        bad = subprocess.run([BIN, "migrate", "--from-endpoint", url_a, "--collection", "fam",
                              "--images", photos, "--access-key", KEY, "--secret-key", "wrong",
                              "--data-dir", os.path.join(tmp, "bad")],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        report("a wrong secret is refused (InvalidSignatureException, exit 1)",
               bad.returncode == 1 and "InvalidSignatureException" in bad.stderr, bad.stderr)

        mig = subprocess.run([BIN, "migrate", "--from-endpoint", url_a, "--collection", "fam",
                              "--images", photos, "--access-key", KEY, "--secret-key", SECRET,
                              "--page-size", "2", "--data-dir", b_dir],
                             capture_output=True, text=True, cwd=ROOT, timeout=600)
        rep = json.loads(mig.stdout) if mig.returncode == 0 else {}
        report("facelink migrate runs (SigV4, paginated ListFaces/ListUsers)",
               mig.returncode == 0 and rep.get("RemoteFaces") == len(fa)
               and rep.get("RemoteUsers") == 3, mig.stderr)
        lost_ids = {x["Face"]["FaceId"] for x in r4}
        report("the report lists the faces whose photo is missing, and only those",
               {u["FaceId"] for u in rep.get("Unmatched", [])} == lost_ids and
               all(u["Reason"].startswith("no photo") for u in rep.get("Unmatched", [])),
               rep.get("Unmatched"))
        report("faces A never indexed (sample2 beyond MaxFaces=1) are dropped",
               len(rep.get("ExtraLocalFacesDropped", [])) == 2, rep.get("ExtraLocalFacesDropped"))
        pa.terminate()
        pa.wait(timeout=30)
        procs.remove(pa)

        pb, url_b = start(b_dir)
        procs.append(pb)
        pa, url_a = start(a_dir)
        procs.append(pa)
        ca, cb = client(url_a), client(url_b)
        fb = {f["FaceId"]: f for f in cb.list_faces(CollectionId="fam", MaxResults=4096)["Faces"]}
        fmap = rep.get("FaceIdMap", {})
        ok, bad_faces = True, []
        for f in fa:
            if f["FaceId"] in lost_ids:
                continue
            g = fb.get(fmap.get(f["FaceId"], ""))
            if not g or g.get("ExternalImageId") != f["ExternalImageId"] or \
                    iou(f["BoundingBox"], g["BoundingBox"]) < 0.9 or \
                    g.get("UserId") != f.get("UserId"):
                ok = False
                bad_faces.append((f, g))
        report("every migrated face: same ExternalImageId, same place, same user",
               ok and len(fb) == len(fa) - len(lost_ids), bad_faces[:3])
        ua = ca.list_users(CollectionId="fam")["Users"]
        ub = cb.list_users(CollectionId="fam")["Users"]
        report("the same users, with the same status",
               [(u["UserId"], u["UserStatus"]) for u in ua] ==
               [(u["UserId"], u["UserStatus"]) for u in ub], f"{ua} {ub}")
        same = True
        for f in fa:
            if f["FaceId"] in lost_ids:
                continue
            sa = ca.search_faces(CollectionId="fam", FaceId=f["FaceId"])["FaceMatches"]
            sb = cb.search_faces(CollectionId="fam", FaceId=fmap[f["FaceId"]])["FaceMatches"]
            xa = sorted(m["Face"]["ExternalImageId"] for m in sa
                        if m["Face"]["FaceId"] not in lost_ids)
            xb = sorted(m["Face"]["ExternalImageId"] for m in sb)
            same = same and xa == xb
        report("SearchFaces finds the same neighbours on B as on A", same)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    done()


if __name__ == "__main__":
    main()
