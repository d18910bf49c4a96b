#!/usr/bin/python3
"""client_boto3.py: Debian's python3-boto3 (1.26.27, botocore 1.29.27) against a
real `facelink serve`, end to end over every face operation.

Starts build/facelink serve (or $BUILD/facelink) on a free 127.0.0.1 port with
a temporary --data-dir and one access key, so every request is SigV4-signed by
botocore and verified by the server. The scenario (photos in
tests/clients/scenario.json): collections, IndexFaces of LFW photos with
ExternalImageIds, ListFaces with pagination (by hand and with boto3's
paginator), SearchFaces, SearchFacesByImage, CompareFaces, DetectFaces, tags,
deletes, and the error cases as boto3 raises them (ClientError with
Error.Code, the client's modeled exception classes). Every response boto3
parses is compared member by member with its raw JSON along botocore's output
shape (ShapeCheck).

Debian's boto3 predates Rekognition's Users operations (2023): its service
model has no CreateUser. Those operations are sent as AWS JSON 1.1 requests
signed by botocore's own SigV4Auth, and their errors parsed by hand.

Without ../shared the face-api demo photos are used and the LFW-specific
assertions (another photo of the same person; a different person) are
skipped. Run by tests/run; uses the system interpreter on purpose (the Debian
packages, not a virtualenv's newer boto3). Prints TAP lines and
"tests: P passed, F failed, S skipped".
"""
import base64
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "helpers"))
from tap import done, free_port, report  # noqa: E402
BIN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "facelink")
AK, SK = "AKIDFACELINKTEST", "boto3-test-secret"
THRESHOLD = 80.0  # Rekognition's default FaceMatchThreshold


def photos():
    """The scenario: (mode, gallery [(extid, path)], user, same, other path or None)."""
    with open(os.path.join(ROOT, "tests/clients/scenario.json")) as f:
        sc = json.load(f)
    lfw = sc["lfw"]
    d = os.path.join(ROOT, lfw["dir"])
    if os.path.isdir(d):
        path = lambda n: os.path.join(d, n[:-5], n + ".jpg")
        mode = "lfw"
        s = lfw
    else:
        s = sc["demo"]
        d = os.path.join(ROOT, s["dir"])
        path = lambda n: os.path.join(d, n + ".jpg")
        mode = "demo"
    gallery = [(n, path(n)) for n in s["gallery"]]
    other = path(s["other"]) if s["other"] else None
    return mode, gallery, s["user"], (path(s["same"]["probe"]), s["same"]["person"]), other


def read(p):
    with open(p, "rb") as f:
        return f.read()


def code_of(exc):
    r = getattr(exc, "response", None) or {}
    return r.get("Error", {}).get("Code")


def expect_error(name, fn, code, cls=None):
    """Call fn(); pass when it raises ClientError with Error.Code == code (and,
    with cls, an instance of that modeled exception class)."""
    from botocore.exceptions import ClientError

    try:
        r = fn()
    except ClientError as e:
        ok = code_of(e) == code and (cls is None or isinstance(e, cls))
        msg = e.response.get("Error", {}).get("Message", "")
        return report(name, ok, f"got {type(e).__name__} {code_of(e)}: {msg}")
    return report(name, False, f"no error, answer {str(r)[:200]}")


class Signed:
    """AWS JSON 1.1 calls signed by botocore's SigV4Auth, for operations
    Debian's boto3 does not model (the Users operations)."""

    def __init__(self, endpoint, ak, sk):
        from botocore.credentials import Credentials

        self.endpoint = endpoint
        self.creds = Credentials(ak, sk)

    def call(self, op, body):
        """Returns (http status, parsed JSON body, x-amzn-RequestId)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        data = json.dumps(body).encode()
        req = AWSRequest(
            method="POST",
            url=self.endpoint + "/",
            data=data,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "RekognitionService." + op,
            },
        )
        SigV4Auth(self.creds, "rekognition", "us-east-1").add_auth(req)
        p = req.prepare()
        u = urllib.request.Request(p.url, data=data, method="POST", headers=dict(p.headers))
        try:
            with urllib.request.urlopen(u, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}"), r.headers.get("x-amzn-RequestId")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}"), e.headers.get("x-amzn-RequestId")


class ShapeCheck:
    """Compares every response's raw JSON with boto3's parsed result, member by
    member along the operation's output shape (botocore's after-call event):
    structures, lists, maps, strings, integers, floats, booleans, and timestamps
    that must come out as datetimes. Members the (old) model does not know are
    only counted: Debian's botocore drops them by design."""

    def __init__(self):
        self.calls, self.problems, self.unknown = 0, [], set()

    def hook(self, http_response, parsed, model, **kw):
        if http_response.status_code != 200:
            return
        self.calls += 1
        raw = json.loads(http_response.content or b"{}")
        self.walk(raw, parsed, model.output_shape, model.name)

    def walk(self, raw, out, shape, path):
        t = shape.type_name if shape is not None else None
        if t == "structure":
            if not isinstance(out, dict):
                self.problems.append(f"{path}: structure became {type(out).__name__}")
                return
            for k, v in raw.items():
                if k not in shape.members:
                    self.unknown.add(f"{shape.name}.{k}")
                elif k not in out:
                    self.problems.append(f"{path}.{k}: dropped")
                else:
                    self.walk(v, out[k], shape.members[k], f"{path}.{k}")
        elif t == "list":
            if not isinstance(out, list) or len(out) != len(raw):
                self.problems.append(f"{path}: list lost")
                return
            for i, (a, b) in enumerate(zip(raw, out)):
                self.walk(a, b, shape.member, f"{path}[{i}]")
        elif t == "map":
            if not isinstance(out, dict) or set(out) != set(raw):
                self.problems.append(f"{path}: map lost")
                return
            for k in raw:
                self.walk(raw[k], out[k], shape.value, f"{path}.{k}")
        elif t == "timestamp":
            if not isinstance(out, datetime.datetime) or abs(out.timestamp() - raw) > 0.002:
                self.problems.append(f"{path}: {raw!r} became {out!r}")
        elif t in ("float", "double"):
            if not isinstance(out, float) or abs(out - raw) > 1e-9 * max(1.0, abs(raw)):
                self.problems.append(f"{path}: {raw!r} became {out!r}")
        elif t in ("integer", "long"):
            if type(out) is not int or out != raw:
                self.problems.append(f"{path}: {raw!r} became {out!r}")
        elif raw != out:
            self.problems.append(f"{path}: {raw!r} became {out!r}")


def start_server(port, data_dir, log):
    cmd = [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
           "--keys", f"{AK}:{SK}", "--workers", "2", "--log-level", "warn"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, True
        except OSError:
            time.sleep(0.05)
    return proc, False


def scenario(rek, bad_secret, bad_key, signed, mode, gallery, user, same, other):
    from botocore.exceptions import ClientError

    shapes = ShapeCheck()
    rek.meta.events.register("after-call.rekognition", shapes.hook)

    lfw = mode == "lfw"
    lfw_skip = None if lfw else "LFW absent (../shared/data/lfw): demo photos only"
    cid = "boto3-lfw"

    # ---- collections ----
    r = rek.create_collection(CollectionId=cid, Tags={"suite": "boto3"})
    report("CreateCollection: StatusCode 200, CollectionArn, FaceModelVersion",
           r.get("StatusCode") == 200 and r.get("CollectionArn", "").endswith(":collection/" + cid)
           and isinstance(r.get("FaceModelVersion"), str), str(r))
    expect_error("CreateCollection again: ResourceAlreadyExistsException (modeled class)",
                 lambda: rek.create_collection(CollectionId=cid), "ResourceAlreadyExistsException",
                 rek.exceptions.ResourceAlreadyExistsException)
    r = rek.describe_collection(CollectionId=cid)
    ts = r.get("CreationTimestamp")
    now = datetime.datetime.now(datetime.timezone.utc)
    report("DescribeCollection: CreationTimestamp parses to a datetime near now, FaceCount 0",
           isinstance(ts, datetime.datetime) and abs((now - ts).total_seconds()) < 120
           and r.get("FaceCount") == 0 and r.get("CollectionARN", "").startswith("arn:aws:rekognition:"),
           str(r))
    arn = r.get("CollectionARN")
    r = rek.list_collections()
    report("ListCollections lists it", cid in r.get("CollectionIds", []), str(r))

    # ---- IndexFaces ----
    face_of = {}
    for extid, path in gallery:
        r = rek.index_faces(CollectionId=cid, Image={"Bytes": read(path)}, ExternalImageId=extid,
                            MaxFaces=1, DetectionAttributes=["DEFAULT"])
        recs = r.get("FaceRecords", [])
        if len(recs) == 1 and recs[0]["Face"].get("ExternalImageId") == extid:
            face_of[extid] = recs[0]["Face"]["FaceId"]
    report(f"IndexFaces: {len(gallery)} photos, one face each, ExternalImageId echoed",
           len(face_of) == len(gallery), f"indexed {sorted(face_of)}")
    r = rek.describe_collection(CollectionId=cid)
    report("DescribeCollection: FaceCount counts them", r.get("FaceCount") == len(gallery), str(r))

    # ---- ListFaces, paginated ----
    seen, pages, token = [], 0, None
    while pages < 20:
        kw = {"CollectionId": cid, "MaxResults": 2}
        if token:
            kw["NextToken"] = token
        r = rek.list_faces(**kw)
        pages += 1
        seen += [f["FaceId"] for f in r.get("Faces", [])]
        token = r.get("NextToken")
        if len(r.get("Faces", [])) > 2:
            break
        if not token:
            break
    report("ListFaces MaxResults=2: every face once over ceil(n/2) pages",
           sorted(seen) == sorted(face_of.values()) and pages in ((len(gallery) + 1) // 2,
                                                                  (len(gallery) + 1) // 2 + 1),
           f"{pages} pages, {len(seen)} faces")
    pg = rek.get_paginator("list_faces")
    ext = [f["ExternalImageId"] for page in pg.paginate(CollectionId=cid, PaginationConfig={"PageSize": 2})
           for f in page["Faces"]]
    report("ListFaces through boto3's paginator: the ExternalImageIds",
           sorted(ext) == sorted(face_of), str(ext))

    # ---- SearchFaces / SearchFacesByImage ----
    probe, person = same
    uface = [face_of.get(n) for n in user["faces"]]
    r = rek.search_faces(CollectionId=cid, FaceId=uface[0])
    m = r.get("FaceMatches", [])
    ok = r.get("SearchedFaceId") == uface[0] and all(x["Face"]["FaceId"] != uface[0] for x in m)
    report("SearchFaces: the searched face itself is not returned", ok, str(r)[:300])
    if lfw:
        report("SearchFaces (LFW): the other indexed photo of the same person is the top match",
               len(m) >= 1 and m[0]["Face"]["FaceId"] == uface[1] and m[0]["Similarity"] >= THRESHOLD,
               str(m[:2]))
    else:
        report("SearchFaces (LFW): other photo of the same person", True, skip=lfw_skip)
    r = rek.search_faces_by_image(CollectionId=cid, Image={"Bytes": read(probe)})
    m = r.get("FaceMatches", [])
    top = m[0] if m else {}
    report("SearchFacesByImage: the same person is the top match above the default threshold"
           + (" (another LFW photo)" if lfw else " (the same photo)"),
           bool(m) and top["Face"]["ExternalImageId"].startswith(person)
           and top["Similarity"] >= THRESHOLD
           and (not lfw or all(x["Face"]["ExternalImageId"].startswith(person) for x in m))
           and isinstance(r.get("SearchedFaceBoundingBox", {}).get("Width"), float),
           str(m)[:300])
    if other:
        r = rek.search_faces_by_image(CollectionId=cid, Image={"Bytes": read(other)})
        report("SearchFacesByImage (LFW): a different person is not returned at the default threshold",
               r.get("FaceMatches") == [], str(r.get("FaceMatches"))[:300])
        r = rek.search_faces_by_image(CollectionId=cid, Image={"Bytes": read(other)},
                                      FaceMatchThreshold=0, MaxFaces=2)
        report("SearchFacesByImage threshold 0 MaxFaces 2: two matches, similarity descending",
               len(r["FaceMatches"]) == 2
               and r["FaceMatches"][0]["Similarity"] >= r["FaceMatches"][1]["Similarity"],
               str(r["FaceMatches"])[:300])
    else:
        report("SearchFacesByImage (LFW): a different person", True, skip=lfw_skip)

    # ---- CompareFaces / DetectFaces ----
    src = read(probe)
    tgt = read(dict(gallery)[user["faces"][0]])
    r = rek.compare_faces(SourceImage={"Bytes": src}, TargetImage={"Bytes": tgt})
    fm = r.get("FaceMatches", [])
    report("CompareFaces: same person matches above the default threshold",
           len(fm) >= 1 and fm[0]["Similarity"] >= THRESHOLD and "Face" in fm[0]
           and isinstance(r.get("SourceImageFace", {}).get("Confidence"), float), str(r)[:300])
    if other:
        r = rek.compare_faces(SourceImage={"Bytes": src}, TargetImage={"Bytes": read(other)})
        report("CompareFaces (LFW): a different person is unmatched at the default threshold",
               r.get("FaceMatches") == [] and len(r.get("UnmatchedFaces", [])) == 1, str(r)[:300])
    else:
        report("CompareFaces (LFW): a different person", True, skip=lfw_skip)
    demo = os.path.join(ROOT, "models/face-api/demo/sample1.jpg")
    r = rek.detect_faces(Image={"Bytes": read(demo)}, Attributes=["ALL"])
    fd = r.get("FaceDetails", [])
    report("DetectFaces ALL: the 3 faces of sample1.jpg with attributes",
           len(fd) == 3 and all(k in fd[0] for k in ("BoundingBox", "AgeRange", "Emotions", "Landmarks",
                                                     "Pose", "Quality", "Confidence")), str(r)[:300])

    # ---- tags ----
    rek.tag_resource(ResourceArn=arn, Tags={"team": "vision", "env": "test"})
    r = rek.list_tags_for_resource(ResourceArn=arn)
    report("TagResource + ListTagsForResource", r.get("Tags") == {"suite": "boto3", "team": "vision",
                                                                  "env": "test"}, str(r))
    rek.untag_resource(ResourceArn=arn, TagKeys=["env", "suite"])
    r = rek.list_tags_for_resource(ResourceArn=arn)
    report("UntagResource", r.get("Tags") == {"team": "vision"}, str(r))

    # ---- Users, signed by botocore's SigV4Auth (not in Debian's boto3 model) ----
    uid = user["UserId"]
    tok = "boto3-create-user-token-0001"
    st, b, rid = signed.call("CreateUser", {"CollectionId": cid, "UserId": uid, "ClientRequestToken": tok})
    report("CreateUser (botocore-signed)", st == 200 and b == {} and rid, f"{st} {b}")
    st, b, _ = signed.call("CreateUser", {"CollectionId": cid, "UserId": uid, "ClientRequestToken": tok})
    report("CreateUser retried with the same ClientRequestToken: 200 (idempotent)", st == 200 and b == {},
           f"{st} {b}")
    st, b, _ = signed.call("CreateUser", {"CollectionId": cid, "UserId": uid,
                                          "ClientRequestToken": "boto3-create-user-token-0002"})
    report("CreateUser of an existing UserId, new token: ConflictException",
           st == 400 and b.get("__type") == "ConflictException", f"{st} {b}")
    st, b, _ = signed.call("AssociateFaces", {"CollectionId": cid, "UserId": uid, "FaceIds": uface})
    report("AssociateFaces: both faces associated",
           st == 200 and sorted(x["FaceId"] for x in b.get("AssociatedFaces", [])) == sorted(uface)
           and b.get("UserStatus") in ("ACTIVE", "UPDATING", "CREATED"), f"{st} {b}")
    st, b, _ = signed.call("ListUsers", {"CollectionId": cid})
    report("ListUsers", st == 200 and [u["UserId"] for u in b.get("Users", [])] == [uid], f"{st} {b}")
    st, b, _ = signed.call("SearchUsers", {"CollectionId": cid, "FaceId": uface[0]})
    um = b.get("UserMatches", [])
    if lfw:
        report("SearchUsers by FaceId (LFW): the user, through its other photo",
               st == 200 and len(um) >= 1 and um[0]["User"]["UserId"] == uid
               and b.get("SearchedFace", {}).get("FaceId") == uface[0], f"{st} {b}")
    else:
        report("SearchUsers by FaceId (LFW): the user", True, skip=lfw_skip)
    st, b, _ = signed.call("SearchUsersByImage", {"CollectionId": cid,
                                                  "Image": {"Bytes": base64.b64encode(src).decode()}})
    um = b.get("UserMatches", [])
    report("SearchUsersByImage: the user is the top match above the default threshold",
           st == 200 and len(um) >= 1 and um[0]["User"]["UserId"] == uid and um[0]["Similarity"] >= THRESHOLD,
           f"{st} {str(b)[:300]}")
    if other:
        st, b, _ = signed.call("SearchUsersByImage", {"CollectionId": cid,
                                                      "Image": {"Bytes": base64.b64encode(read(other)).decode()}})
        report("SearchUsersByImage (LFW): a different person matches no user",
               st == 200 and b.get("UserMatches") == [], f"{st} {str(b)[:300]}")
    else:
        report("SearchUsersByImage (LFW): a different person", True, skip=lfw_skip)
    # Debian's model predates UnsuccessfulFaceDeletions (boto3 drops it): read it signed.
    r = rek.delete_faces(CollectionId=cid, FaceIds=[uface[0]])
    report("DeleteFaces (boto3) of an associated face: nothing deleted", r.get("DeletedFaces") == [], str(r))
    st, b, _ = signed.call("DeleteFaces", {"CollectionId": cid, "FaceIds": [uface[0]]})
    un = b.get("UnsuccessfulFaceDeletions", [])
    report("DeleteFaces (signed) of an associated face: ASSOCIATED_TO_AN_EXISTING_USER with the UserId",
           st == 200 and b.get("DeletedFaces") == [] and len(un) == 1
           and un[0].get("Reasons") == ["ASSOCIATED_TO_AN_EXISTING_USER"] and un[0].get("UserId") == uid,
           f"{st} {b}")
    st, b, _ = signed.call("DisassociateFaces", {"CollectionId": cid, "UserId": uid, "FaceIds": [uface[0]]})
    report("DisassociateFaces", st == 200 and [x["FaceId"] for x in b.get("DisassociatedFaces", [])] == [uface[0]],
           f"{st} {b}")
    st, b, _ = signed.call("CreateUser", {"CollectionId": "no-such-collection", "UserId": "u"})
    report("CreateUser in a missing collection: ResourceNotFoundException",
           st == 400 and b.get("__type") == "ResourceNotFoundException", f"{st} {b}")
    st, b, _ = signed.call("DeleteUser", {"CollectionId": cid, "UserId": uid})
    report("DeleteUser", st == 200 and b == {}, f"{st} {b}")

    # ---- deletes ----
    unknown = "11111111-2222-4333-8444-555555555555"
    r = rek.delete_faces(CollectionId=cid, FaceIds=[uface[0], unknown])
    report("DeleteFaces: the face deleted, an unknown id not", r.get("DeletedFaces") == [uface[0]], str(r))
    st, b, _ = signed.call("DeleteFaces", {"CollectionId": cid, "FaceIds": [unknown]})
    un = b.get("UnsuccessfulFaceDeletions", [])
    report("DeleteFaces (signed) of an unknown id: FACE_NOT_FOUND",
           st == 200 and b.get("DeletedFaces") == [] and len(un) == 1 and un[0].get("FaceId") == unknown
           and un[0].get("Reasons") == ["FACE_NOT_FOUND"], f"{st} {b}")
    r = rek.describe_collection(CollectionId=cid)
    report("DescribeCollection: FaceCount after the delete", r.get("FaceCount") == len(gallery) - 1, str(r))

    # ---- error cases ----
    expect_error("DescribeCollection of a missing collection: ResourceNotFoundException (modeled class)",
                 lambda: rek.describe_collection(CollectionId="no-such-collection"),
                 "ResourceNotFoundException", rek.exceptions.ResourceNotFoundException)
    expect_error("SearchFacesByImage in a missing collection: ResourceNotFoundException",
                 lambda: rek.search_faces_by_image(CollectionId="no-such-collection", Image={"Bytes": src}),
                 "ResourceNotFoundException", rek.exceptions.ResourceNotFoundException)
    expect_error("CreateCollection with an invalid id: InvalidParameterException",
                 lambda: rek.create_collection(CollectionId="bad id!"), "InvalidParameterException",
                 rek.exceptions.InvalidParameterException)
    expect_error("SearchFaces with a malformed FaceId: InvalidParameterException",
                 lambda: rek.search_faces(CollectionId=cid, FaceId="not-a-uuid"), "InvalidParameterException")
    expect_error("IndexFaces of a text file: InvalidImageFormatException (modeled class)",
                 lambda: rek.index_faces(CollectionId=cid, Image={"Bytes": b"this is not an image" * 10}),
                 "InvalidImageFormatException", rek.exceptions.InvalidImageFormatException)
    expect_error("DetectFaces of a truncated JPEG: InvalidImageFormatException",
                 lambda: rek.detect_faces(Image={"Bytes": src[:200]}), "InvalidImageFormatException")
    expect_error("Wrong secret key: InvalidSignatureException",
                 lambda: bad_secret.list_collections(), "InvalidSignatureException")
    expect_error("Unknown access key: UnrecognizedClientException",
                 lambda: bad_key.list_collections(), "UnrecognizedClientException")
    try:
        bad_secret.list_collections()
    except ClientError as e:
        report("SigV4 errors are HTTP 400 with a request id",
               e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
               and e.response["ResponseMetadata"].get("RequestId"), str(e.response))

    r = rek.delete_collection(CollectionId=cid)
    report("DeleteCollection: StatusCode 200", r.get("StatusCode") == 200, str(r))
    report(f"every member of {shapes.calls} responses parsed along the output shapes "
           "(datetimes, ints, floats, nothing dropped)",
           shapes.calls >= 20 and not shapes.problems, "; ".join(shapes.problems[:10]))
    if shapes.unknown:
        print("# members this botocore's model does not know (dropped by design): "
              + ", ".join(sorted(shapes.unknown)))
    expect_error("DeleteCollection again: ResourceNotFoundException",
                 lambda: rek.delete_collection(CollectionId=cid), "ResourceNotFoundException",
                 rek.exceptions.ResourceNotFoundException)


def main():
    t0 = time.monotonic()
    try:
        import boto3
        import botocore
        from botocore.config import Config
    except ImportError as e:
        report("boto3 available", True, skip=f"python3-boto3 missing ({e}); run scripts/setup")
        done()
    if not os.access(BIN, os.X_OK):
        report("facelink built", False, f"{BIN} missing")
        done()
    if not os.path.isdir(os.path.join(ROOT, "models/face-api/model")):
        report("models present", True, skip="models/ absent (run scripts/setup)")
        done()
    print(f"# boto3 {boto3.__version__}, botocore {botocore.__version__}")
    mode, gallery, user, same, other = photos()
    print(f"# photos: {mode}")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fl-boto3-") as tmp:
        log = open(os.path.join(tmp, "server.log"), "w+")
        proc, up = start_server(port, os.path.join(tmp, "data"), log)
        try:
            if not report("server up (/healthz)", up, f"exit {proc.poll()}"):
                log.seek(0)
                print("# " + log.read().replace("\n", "\n# "))
                return
            cfg = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60)
            mk = lambda ak, sk: boto3.client("rekognition", endpoint_url=endpoint, region_name="us-east-1",
                                             aws_access_key_id=ak, aws_secret_access_key=sk, config=cfg)
            try:
                scenario(mk(AK, SK), mk(AK, SK + "x"), mk("AKIDUNKNOWN", SK), Signed(endpoint, AK, SK),
                         mode, gallery, user, same, other)
            except Exception as e:  # an unexpected exception fails the script, visibly
                import traceback

                traceback.print_exc(file=sys.stdout)
                report("scenario ran to the end", False, f"{type(e).__name__}: {e}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            report("server stops cleanly on SIGTERM", rc == 0, f"exit {rc}")
            log.close()
    print(f"# {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
    done()
