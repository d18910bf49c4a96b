#!/usr/bin/env python3
"""test_server_botocore.py: `facelink serve` against botocore's own SigV4
signer and error parser (python3-botocore), over real HTTP on 127.0.0.1.

Starts build/facelink serve (or $BUILD/facelink) with one read-write and one
read-only key, then checks that botocore-signed requests (Authorization
header and presigned query form) pass authentication, that bad ones get the
AWS error codes with HTTP 400, that botocore parses our error bodies into the
right code, message and request id, and that a read-only key is refused a
write with the modeled AccessDeniedException class.

Until the api module lands the service answers UnknownOperationException for
every operation; "authenticated" therefore means "the answer is not an
authentication error". Prints TAP lines and "tests: P passed, F failed, S skipped".
"""
import json
import os
import re
import signal
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
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
AUTH_ERRORS = {
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "AccessDeniedException",
}


def main():
    try:
        import botocore.config
        import botocore.session
        from botocore.auth import SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from botocore.exceptions import ClientError
    except ImportError as e:
        report("botocore available", False, skip=f"python3-botocore missing ({e})")
        done()
    if not os.access(BIN, os.X_OK):
        report("facelink binary built", False, skip=f"{BIN} not built")
        done()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tmp = tempfile.mkdtemp(prefix="fl-botocore-")
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("FACELINK_"):
            del env[k]
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", tmp, "--workers", "2",
         "--keys", "AKIDTESTRW:rw-secret/+x", "--read-only-keys", "AKIDTESTRO:ro-secret",
         "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        up = False
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                    up = r.status == 200 and json.loads(r.read()) == {"status": "ok"}
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        report("serve starts and answers GET /healthz", up)
        if not up:
            done()

        session = botocore.session.get_session()

        def client(key, secret):
            return session.create_client(
                "rekognition", region_name="us-east-1", endpoint_url=url,
                aws_access_key_id=key, aws_secret_access_key=secret,
                config=botocore.config.Config(retries={"max_attempts": 1}))

        def call(c, op, **kw):
            try:
                resp = getattr(c, op)(**kw)
                return None, resp
            except ClientError as e:
                return e, e.response

        rw = client("AKIDTESTRW", "rw-secret/+x")
        err, resp = call(rw, "list_collections")
        code = err.response["Error"]["Code"] if err else None
        report("botocore header-signed request is authenticated", code not in AUTH_ERRORS,
               f"got {code}: {resp.get('Error')}")
        rid = resp["ResponseMetadata"].get("RequestId", "")
        report("botocore reads x-amzn-RequestId", bool(UUID.match(rid)), f"RequestId {rid!r}")
        if err:
            report("botocore parses our error body (code, message, 400)",
                   code == "UnknownOperationException" and err.response["Error"]["Message"]
                   and resp["ResponseMetadata"]["HTTPStatusCode"] == 400,
                   f"{resp}")
        else:
            report("botocore parses our success body", "CollectionIds" in resp, f"{resp}")

        err, resp = call(client("AKIDTESTRW", "wrong"), "list_collections")
        report("wrong secret -> InvalidSignatureException, HTTP 400",
               err is not None and err.response["Error"]["Code"] == "InvalidSignatureException"
               and resp["ResponseMetadata"]["HTTPStatusCode"] == 400, f"{resp}")

        err, resp = call(client("AKIDNOBODY", "x"), "list_collections")
        report("unknown key -> UnrecognizedClientException, HTTP 400",
               err is not None and err.response["Error"]["Code"] == "UnrecognizedClientException"
               and resp["ResponseMetadata"]["HTTPStatusCode"] == 400, f"{resp}")

        ro = client("AKIDTESTRO", "ro-secret")
        try:
            ro.index_faces(CollectionId="c", Image={"Bytes": b"\xff\xd8\xff"})
            report("read-only key: IndexFaces raises AccessDeniedException", False, "no error")
        except ro.exceptions.AccessDeniedException as e:
            report("read-only key: IndexFaces raises AccessDeniedException",
                   "rekognition:IndexFaces" in e.response["Error"]["Message"], f"{e.response}")
        except ClientError as e:
            report("read-only key: IndexFaces raises AccessDeniedException", False, f"{e.response}")
        err, resp = call(ro, "describe_collection", CollectionId="c")
        code = err.response["Error"]["Code"] if err else None
        report("read-only key: DescribeCollection is authenticated and allowed",
               code not in AUTH_ERRORS, f"got {code}")

        # Presigned query form, signed by botocore's SigV4QueryAuth.
        req = AWSRequest(method="POST", url=url + "/", data=b"{}", headers={
            "X-Amz-Target": "RekognitionService.ListCollections",
            "Content-Type": "application/x-amz-json-1.1"})
        SigV4QueryAuth(Credentials("AKIDTESTRW", "rw-secret/+x"), "rekognition", "us-east-1",
                       expires=60).add_auth(req)
        prepared = req.prepare()
        # botocore's query signer moves body parameters into the query and
        # signs an empty body: send exactly what it prepared.
        headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
        hreq = urllib.request.Request(prepared.url, data=prepared.body or b"", method="POST",
                                      headers=headers)
        try:
            with urllib.request.urlopen(hreq, timeout=5) as r:
                status, payload = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, payload = e.code, json.loads(e.read())
        report("botocore presigned (query) request is authenticated",
               "X-Amz-Signature=" in prepared.url and payload.get("__type") not in AUTH_ERRORS,
               f"{status} {payload}")
        # the same URL with a body added must fail (the body is signed)
        hreq = urllib.request.Request(prepared.url, data=b'{"MaxResults":2}', method="POST",
                                      headers=headers)
        try:
            urllib.request.urlopen(hreq, timeout=5)
            report("presigned URL with another body is refused", False, "accepted")
        except urllib.error.HTTPError as e:
            payload = json.loads(e.read())
            report("presigned URL with another body is refused",
                   e.code == 400 and payload.get("__type") == "InvalidSignatureException",
                   f"{e.code} {payload}")

        # unsigned
        hreq = urllib.request.Request(url + "/", data=b"{}", method="POST", headers={
            "X-Amz-Target": "RekognitionService.ListCollections",
            "Content-Type": "application/x-amz-json-1.1"})
        try:
            urllib.request.urlopen(hreq, timeout=5)
            report("unsigned -> MissingAuthenticationTokenException", False, "accepted")
        except urllib.error.HTTPError as e:
            payload = json.loads(e.read())
            report("unsigned -> MissingAuthenticationTokenException",
                   e.code == 400 and payload.get("__type") == "MissingAuthenticationTokenException"
                   and set(payload) == {"__type", "Code", "Logref", "Message"}
                   and UUID.match(e.headers.get("x-amzn-RequestId", "")), f"{e.code} {payload}")

        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        out = proc.stdout.read().decode(errors="replace")
        report("SIGTERM stops the server cleanly (exit 0)", rc == 0, f"rc={rc}, output:\n{out}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(["rm", "-rf", tmp])
    done()


if __name__ == "__main__":
    main()
