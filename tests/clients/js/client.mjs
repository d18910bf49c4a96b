// client.mjs: the AWS SDK for JavaScript v3 (@aws-sdk/client-rekognition, pinned in
// package-lock.json) against a real `facelink serve`, end to end over every face
// operation, the Users operations included. Run by tests/scripts/client_js.sh.
//
// Starts build/facelink serve ($BUILD/facelink) on a free 127.0.0.1 port with a
// temporary --data-dir and one access key, so the SDK signs every request and the
// server verifies it. Besides the outcomes (same person above the default
// threshold, different person absent, modeled exception classes), it checks that
// every member of every response the server sends survives the SDK's
// deserialisation: the raw body of each response is kept by a middleware that
// runs before the deserializer, and compared member by member with the parsed
// output (timestamps must come out as Date, numbers as numbers, nothing dropped
// because the SDK's model does not know it).
//
// Without ../shared the face-api demo photos are used and the LFW assertions are
// skipped. Prints TAP lines and "tests: P passed, F failed, S skipped".
import { spawn } from "node:child_process";
import { readFileSync, mkdtempSync, rmSync, existsSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import * as R from "@aws-sdk/client-rekognition";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const BIN = join(ROOT, process.env.BUILD || "build", "facelink");
const AK = "AKIDFACELINKJS";
const SK = "js-test-secret";
const THRESHOLD = 80; // Rekognition's default FaceMatchThreshold
const t0 = Date.now();

const results = [];
function report(name, ok, detail = "", skip = null) {
    const n = results.length + 1;
    if (skip) {
        console.log(`ok ${n} - ${name} # SKIP ${skip}`);
        results.push("s");
    } else if (ok) {
        console.log(`ok ${n} - ${name}`);
        results.push("p");
    } else {
        console.log(`not ok ${n} - ${name}`);
        if (detail) console.log(`# ${String(detail).slice(0, 600)}`);
        results.push("f");
    }
    return ok;
}
function done() {
    const c = (k) => results.filter((r) => r === k).length;
    console.log(`1..${results.length}`);
    console.log(`tests: ${c("p")} passed, ${c("f")} failed, ${c("s")} skipped`);
    process.exit(c("f") ? 1 : 0);
}
const show = (x) => JSON.stringify(x, (k, v) => (k === "$metadata" ? undefined : v));

function freePort() {
    return new Promise((res, rej) => {
        const s = createServer();
        s.once("error", rej);
        s.listen(0, "127.0.0.1", () => {
            const { port } = s.address();
            s.close(() => res(port));
        });
    });
}

function photos() {
    const sc = JSON.parse(readFileSync(join(ROOT, "tests/clients/scenario.json"), "utf8"));
    let s = sc.lfw;
    let mode = "lfw";
    let path = (n) => join(ROOT, sc.lfw.dir, n.slice(0, -5), `${n}.jpg`);
    if (!existsSync(join(ROOT, sc.lfw.dir))) {
        s = sc.demo;
        mode = "demo";
        path = (n) => join(ROOT, sc.demo.dir, `${n}.jpg`);
    }
    return {
        mode,
        gallery: s.gallery.map((n) => [n, path(n)]),
        user: s.user,
        probe: path(s.same.probe),
        person: s.same.person,
        other: s.other ? path(s.other) : null,
        path,
    };
}

// ---- raw-body capture and the member-by-member comparison ----
let lastRaw = null;
function captureRaw(client) {
    client.middlewareStack.add(
        (next) => async (args) => {
            const out = await next(args);
            const body = out.response && out.response.body;
            if (body && typeof body[Symbol.asyncIterator] === "function") {
                const chunks = [];
                for await (const c of body) chunks.push(Buffer.from(c));
                const buf = Buffer.concat(chunks);
                lastRaw = buf.length ? buf.toString("utf8") : "{}";
                out.response.body = Readable.from([buf]);
            }
            return out;
        },
        { step: "deserialize", priority: "low", name: "facelinkCaptureRaw" },
    );
}

// Timestamp members of Rekognition's face operations (epoch seconds on the wire).
const TIMESTAMPS = new Set(["CreationTimestamp"]);

// Returns a list of "path: problem" strings, empty when `out` carries every member
// of `raw` with the right type.
function diff(raw, out, path = "") {
    const bad = [];
    if (Array.isArray(raw)) {
        if (!Array.isArray(out) || out.length !== raw.length) return [`${path}: array lost`];
        raw.forEach((v, i) => bad.push(...diff(v, out[i], `${path}[${i}]`)));
    } else if (raw !== null && typeof raw === "object") {
        if (out === null || typeof out !== "object") return [`${path}: object lost`];
        for (const k of Object.keys(raw)) {
            if (!(k in out) || out[k] === undefined) {
                bad.push(`${path}.${k}: dropped by the SDK`);
            } else if (TIMESTAMPS.has(k)) {
                if (!(out[k] instanceof Date) || Math.abs(out[k].getTime() - raw[k] * 1000) > 1)
                    bad.push(`${path}.${k}: ${raw[k]} not a Date (${out[k]})`);
            } else {
                bad.push(...diff(raw[k], out[k], `${path}.${k}`));
            }
        }
    } else if (typeof raw === "number") {
        if (typeof out !== "number" || Math.abs(out - raw) > 1e-6 * Math.max(1, Math.abs(raw)))
            bad.push(`${path}: number ${raw} became ${typeof out} ${out}`);
    } else if (raw !== out) {
        bad.push(`${path}: ${JSON.stringify(raw)} became ${JSON.stringify(out)}`);
    }
    return bad;
}

const shapeProblems = [];
let calls = 0;
async function send(client, cmd) {
    lastRaw = null;
    const out = await client.send(cmd);
    calls++;
    if (lastRaw === null) {
        shapeProblems.push(`${cmd.constructor.name}: raw body not captured`);
    } else {
        for (const p of diff(JSON.parse(lastRaw), out)) shapeProblems.push(`${cmd.constructor.name} ${p}`);
    }
    return out;
}

async function expectError(name, fn, code, cls) {
    try {
        const r = await fn();
        return report(name, false, `no error: ${show(r)}`);
    } catch (e) {
        const ok =
            e.name === code &&
            (!cls || e instanceof cls) &&
            e instanceof R.RekognitionServiceException &&
            e.$metadata?.httpStatusCode === 400 &&
            typeof e.$metadata?.requestId === "string" &&
            typeof e.message === "string" &&
            e.message.length > 0;
        return report(name, ok, `got ${e.constructor.name} ${e.name} ${e.$metadata?.httpStatusCode}: ${e.message}`);
    }
}

async function startServer(port, dataDir, logPath) {
    const log = openSync(logPath, "w");
    const proc = spawn(
        BIN,
        ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--keys", `${AK}:${SK}`,
         "--workers", "2", "--log-level", "warn"],
        { cwd: ROOT, stdio: ["ignore", log, log] },
    );
    closeSync(log);
    let exited = false;
    proc.on("exit", () => (exited = true));
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline && !exited) {
        try {
            const r = await fetch(`http://127.0.0.1:${port}/healthz`);
            if (r.status === 200) return { proc, up: true };
        } catch {
            /* not listening yet */
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    return { proc, up: false };
}

function stopServer(proc) {
    return new Promise((res) => {
        if (proc.exitCode !== null) return res(proc.exitCode);
        const timer = setTimeout(() => proc.kill("SIGKILL"), 20000);
        proc.on("exit", (code, sig) => {
            clearTimeout(timer);
            res(sig ? sig : code);
        });
        proc.kill("SIGTERM");
    });
}

async function scenario(rek, badSecret, badKey, ph) {
    const lfw = ph.mode === "lfw";
    const lfwSkip = lfw ? null : "LFW absent (../shared/data/lfw): demo photos only";
    const cid = "js-lfw";
    const img = (p) => ({ Bytes: readFileSync(p) });

    // ---- collections ----
    let r = await send(rek, new R.CreateCollectionCommand({ CollectionId: cid, Tags: { suite: "js" } }));
    report("CreateCollection: StatusCode 200, CollectionArn, FaceModelVersion",
        r.StatusCode === 200 && r.CollectionArn.endsWith(`:collection/${cid}`) && typeof r.FaceModelVersion === "string",
        show(r));
    await expectError("CreateCollection again: ResourceAlreadyExistsException instance",
        () => rek.send(new R.CreateCollectionCommand({ CollectionId: cid })),
        "ResourceAlreadyExistsException", R.ResourceAlreadyExistsException);
    r = await send(rek, new R.DescribeCollectionCommand({ CollectionId: cid }));
    report("DescribeCollection: CreationTimestamp is a Date near now, FaceCount 0, UserCount 0",
        r.CreationTimestamp instanceof Date && Math.abs(Date.now() - r.CreationTimestamp.getTime()) < 120000 &&
            r.FaceCount === 0 && r.UserCount === 0 && r.CollectionARN.startsWith("arn:aws:rekognition:"),
        show(r));
    report("$metadata: HTTP 200 and the x-amzn-RequestId",
        r.$metadata.httpStatusCode === 200 && /^[0-9a-f-]{36}$/.test(r.$metadata.requestId || ""),
        JSON.stringify(r.$metadata));
    const arn = r.CollectionARN;
    r = await send(rek, new R.ListCollectionsCommand({}));
    report("ListCollections lists it", r.CollectionIds.includes(cid), show(r));

    // ---- IndexFaces ----
    const faceOf = {};
    for (const [extid, p] of ph.gallery) {
        r = await send(rek, new R.IndexFacesCommand({
            CollectionId: cid, Image: img(p), ExternalImageId: extid, MaxFaces: 1,
            DetectionAttributes: ["ALL"], QualityFilter: "AUTO",
        }));
        if (r.FaceRecords.length === 1 && r.FaceRecords[0].Face.ExternalImageId === extid)
            faceOf[extid] = r.FaceRecords[0].Face.FaceId;
    }
    const n = ph.gallery.length;
    report(`IndexFaces: ${n} photos, one face each, ExternalImageId echoed`,
        Object.keys(faceOf).length === n, JSON.stringify(faceOf));

    // ---- ListFaces, paginated (by hand and with the SDK's paginator) ----
    const seen = [];
    let pages = 0, token;
    do {
        r = await send(rek, new R.ListFacesCommand({ CollectionId: cid, MaxResults: 2, NextToken: token }));
        pages++;
        seen.push(...r.Faces.map((f) => f.FaceId));
        token = r.NextToken;
    } while (token && pages < 20);
    report("ListFaces MaxResults=2: every face once",
        JSON.stringify(seen.slice().sort()) === JSON.stringify(Object.values(faceOf).sort()) &&
            pages >= Math.ceil(n / 2) && pages <= Math.ceil(n / 2) + 1,
        `${pages} pages: ${seen}`);
    const ext = [];
    for await (const page of R.paginateListFaces({ client: rek, pageSize: 2 }, { CollectionId: cid }))
        ext.push(...page.Faces.map((f) => f.ExternalImageId));
    report("paginateListFaces: the ExternalImageIds",
        JSON.stringify(ext.sort()) === JSON.stringify(Object.keys(faceOf).sort()), ext.join(","));

    // ---- SearchFaces / SearchFacesByImage ----
    const uface = ph.user.faces.map((e) => faceOf[e]);
    r = await send(rek, new R.SearchFacesCommand({ CollectionId: cid, FaceId: uface[0] }));
    report("SearchFaces: the searched face itself is not returned",
        r.SearchedFaceId === uface[0] && r.FaceMatches.every((m) => m.Face.FaceId !== uface[0]), show(r));
    if (lfw)
        report("SearchFaces (LFW): the other indexed photo of the same person is the top match",
            r.FaceMatches.length >= 1 && r.FaceMatches[0].Face.FaceId === uface[1] &&
                r.FaceMatches[0].Similarity >= THRESHOLD, show(r.FaceMatches));
    else report("SearchFaces (LFW): other photo of the same person", true, "", lfwSkip);
    r = await send(rek, new R.SearchFacesByImageCommand({ CollectionId: cid, Image: img(ph.probe) }));
    const m = r.FaceMatches;
    report("SearchFacesByImage: the same person is the top match above the default threshold" +
        (lfw ? " (another LFW photo)" : " (the same photo)"),
        m.length >= 1 && m[0].Face.ExternalImageId.startsWith(ph.person) && m[0].Similarity >= THRESHOLD &&
            (!lfw || m.every((x) => x.Face.ExternalImageId.startsWith(ph.person))) &&
            typeof r.SearchedFaceConfidence === "number",
        show(m));
    if (ph.other) {
        r = await send(rek, new R.SearchFacesByImageCommand({ CollectionId: cid, Image: img(ph.other) }));
        report("SearchFacesByImage (LFW): a different person is not returned at the default threshold",
            r.FaceMatches.length === 0, show(r.FaceMatches));
    } else report("SearchFacesByImage (LFW): a different person", true, "", lfwSkip);

    // ---- CompareFaces / DetectFaces ----
    const target = ph.gallery.find(([e]) => e === ph.user.faces[0])[1];
    r = await send(rek, new R.CompareFacesCommand({ SourceImage: img(ph.probe), TargetImage: img(target) }));
    report("CompareFaces: same person matches above the default threshold",
        r.FaceMatches.length >= 1 && r.FaceMatches[0].Similarity >= THRESHOLD &&
            typeof r.SourceImageFace.BoundingBox.Width === "number", show(r));
    if (ph.other) {
        r = await send(rek, new R.CompareFacesCommand({ SourceImage: img(ph.probe), TargetImage: img(ph.other) }));
        report("CompareFaces (LFW): a different person is unmatched at the default threshold",
            r.FaceMatches.length === 0 && r.UnmatchedFaces.length === 1, show(r));
    } else report("CompareFaces (LFW): a different person", true, "", lfwSkip);
    r = await send(rek, new R.DetectFacesCommand({
        Image: img(join(ROOT, "models/face-api/demo/sample1.jpg")), Attributes: ["ALL"],
    }));
    report("DetectFaces ALL: the 3 faces of sample1.jpg with attributes",
        r.FaceDetails.length === 3 &&
            ["AgeRange", "Emotions", "Landmarks", "Pose", "Quality", "Smile", "Gender"].every((k) => k in r.FaceDetails[0]),
        show(r).slice(0, 300));

    // ---- tags ----
    await send(rek, new R.TagResourceCommand({ ResourceArn: arn, Tags: { team: "vision", env: "test" } }));
    r = await send(rek, new R.ListTagsForResourceCommand({ ResourceArn: arn }));
    report("TagResource + ListTagsForResource",
        JSON.stringify(r.Tags, Object.keys(r.Tags).sort()) === JSON.stringify({ env: "test", suite: "js", team: "vision" }),
        show(r));
    await send(rek, new R.UntagResourceCommand({ ResourceArn: arn, TagKeys: ["env", "suite"] }));
    r = await send(rek, new R.ListTagsForResourceCommand({ ResourceArn: arn }));
    report("UntagResource", JSON.stringify(r.Tags) === JSON.stringify({ team: "vision" }), show(r));

    // ---- Users ----
    const uid = ph.user.UserId;
    r = await send(rek, new R.CreateUserCommand({ CollectionId: cid, UserId: uid }));
    report("CreateUser", r.$metadata.httpStatusCode === 200, show(r));
    await expectError("CreateUser of an existing UserId (fresh SDK token): ConflictException instance",
        () => rek.send(new R.CreateUserCommand({ CollectionId: cid, UserId: uid })),
        "ConflictException", R.ConflictException);
    r = await send(rek, new R.AssociateFacesCommand({ CollectionId: cid, UserId: uid, FaceIds: uface }));
    report("AssociateFaces: both faces associated",
        r.AssociatedFaces.map((f) => f.FaceId).sort().join() === uface.slice().sort().join() &&
            r.UnsuccessfulFaceAssociations.length === 0 && typeof r.UserStatus === "string", show(r));
    r = await send(rek, new R.ListUsersCommand({ CollectionId: cid }));
    report("ListUsers", r.Users.length === 1 && r.Users[0].UserId === uid, show(r));
    r = await send(rek, new R.DescribeCollectionCommand({ CollectionId: cid }));
    report("DescribeCollection: UserCount 1", r.UserCount === 1 && r.FaceCount === n, show(r));
    r = await send(rek, new R.ListFacesCommand({ CollectionId: cid, UserId: uid }));
    report("ListFaces UserId filter: the associated faces, each with its UserId",
        r.Faces.map((f) => f.FaceId).sort().join() === uface.slice().sort().join() &&
            r.Faces.every((f) => f.UserId === uid), show(r));
    r = await send(rek, new R.SearchUsersCommand({ CollectionId: cid, UserId: uid }));
    report("SearchUsers by UserId: SearchedUser echoed, UserMatches a list",
        r.SearchedUser?.UserId === uid && Array.isArray(r.UserMatches) && typeof r.FaceModelVersion === "string",
        show(r));
    r = await send(rek, new R.SearchUsersCommand({ CollectionId: cid, FaceId: uface[0] }));
    if (lfw)
        report("SearchUsers by FaceId (LFW): the user, through its other photo",
            r.UserMatches.length >= 1 && r.UserMatches[0].User.UserId === uid &&
                r.SearchedFace?.FaceId === uface[0], show(r));
    else report("SearchUsers by FaceId (LFW): the user", true, "", lfwSkip);
    r = await send(rek, new R.SearchUsersByImageCommand({ CollectionId: cid, Image: img(ph.probe) }));
    report("SearchUsersByImage: the user is the top match above the default threshold",
        r.UserMatches.length >= 1 && r.UserMatches[0].User.UserId === uid && r.UserMatches[0].Similarity >= THRESHOLD &&
            typeof r.SearchedFace?.FaceDetail?.BoundingBox?.Width === "number", show(r));
    if (ph.other) {
        r = await send(rek, new R.SearchUsersByImageCommand({ CollectionId: cid, Image: img(ph.other) }));
        report("SearchUsersByImage (LFW): a different person matches no user", r.UserMatches.length === 0, show(r));
    } else report("SearchUsersByImage (LFW): a different person", true, "", lfwSkip);
    r = await send(rek, new R.DeleteFacesCommand({ CollectionId: cid, FaceIds: [uface[0]] }));
    report("DeleteFaces of an associated face: ASSOCIATED_TO_AN_EXISTING_USER with the UserId",
        r.DeletedFaces.length === 0 && r.UnsuccessfulFaceDeletions.length === 1 &&
            r.UnsuccessfulFaceDeletions[0].Reasons.join() === "ASSOCIATED_TO_AN_EXISTING_USER" &&
            r.UnsuccessfulFaceDeletions[0].UserId === uid, show(r));
    r = await send(rek, new R.DisassociateFacesCommand({ CollectionId: cid, UserId: uid, FaceIds: [uface[0]] }));
    report("DisassociateFaces", r.DisassociatedFaces.map((f) => f.FaceId).join() === uface[0], show(r));
    await expectError("AssociateFaces to a missing user: ResourceNotFoundException instance",
        () => rek.send(new R.AssociateFacesCommand({ CollectionId: cid, UserId: "nobody", FaceIds: [uface[0]] })),
        "ResourceNotFoundException", R.ResourceNotFoundException);
    r = await send(rek, new R.DeleteUserCommand({ CollectionId: cid, UserId: uid }));
    report("DeleteUser", r.$metadata.httpStatusCode === 200, show(r));
    r = await send(rek, new R.ListUsersCommand({ CollectionId: cid }));
    report("ListUsers after DeleteUser: empty", r.Users.length === 0, show(r));

    // ---- deletes ----
    const unknown = "11111111-2222-4333-8444-555555555555";
    r = await send(rek, new R.DeleteFacesCommand({ CollectionId: cid, FaceIds: [uface[0], unknown] }));
    report("DeleteFaces: the face deleted, an unknown id FACE_NOT_FOUND",
        r.DeletedFaces.join() === uface[0] && r.UnsuccessfulFaceDeletions.length === 1 &&
            r.UnsuccessfulFaceDeletions[0].FaceId === unknown &&
            r.UnsuccessfulFaceDeletions[0].Reasons.join() === "FACE_NOT_FOUND", show(r));

    // ---- a second collection: UnindexedFaces, ListCollections pagination ----
    const cid2 = "js-second";
    await send(rek, new R.CreateCollectionCommand({ CollectionId: cid2 }));
    r = await send(rek, new R.IndexFacesCommand({
        CollectionId: cid2, Image: img(join(ROOT, "models/face-api/demo/sample1.jpg")), MaxFaces: 1,
    }));
    report("IndexFaces MaxFaces 1 of a 3-face photo: 2 UnindexedFaces EXCEEDS_MAX_FACES with FaceDetail",
        r.FaceRecords.length === 1 && r.UnindexedFaces.length === 2 &&
            r.UnindexedFaces.every((u) => u.Reasons.includes("EXCEEDS_MAX_FACES") &&
                typeof u.FaceDetail.BoundingBox.Height === "number"), show(r).slice(0, 400));
    const ids = [];
    token = undefined;
    pages = 0;
    do {
        r = await send(rek, new R.ListCollectionsCommand({ MaxResults: 1, NextToken: token }));
        pages++;
        ids.push(...r.CollectionIds);
        token = r.NextToken;
    } while (token && pages < 10);
    report("ListCollections MaxResults 1: both collections over the pages",
        ids.sort().join() === [cid, cid2].sort().join() && pages >= 2, `${pages} pages: ${ids}`);
    r = await send(rek, new R.DeleteCollectionCommand({ CollectionId: cid2 }));
    report("DeleteCollection of a non-empty collection", r.StatusCode === 200, show(r));

    // ---- error cases ----
    await expectError("DescribeCollection of a missing collection: ResourceNotFoundException instance",
        () => rek.send(new R.DescribeCollectionCommand({ CollectionId: "no-such-collection" })),
        "ResourceNotFoundException", R.ResourceNotFoundException);
    await expectError("ListFaces of a missing collection: ResourceNotFoundException instance",
        () => rek.send(new R.ListFacesCommand({ CollectionId: "no-such-collection" })),
        "ResourceNotFoundException", R.ResourceNotFoundException);
    await expectError("CreateCollection with an invalid id: InvalidParameterException instance",
        () => rek.send(new R.CreateCollectionCommand({ CollectionId: "bad id!" })),
        "InvalidParameterException", R.InvalidParameterException);
    await expectError("SearchFaces with MaxFaces 0: InvalidParameterException instance",
        () => rek.send(new R.SearchFacesCommand({ CollectionId: cid, FaceId: uface[1], MaxFaces: 0 })),
        "InvalidParameterException", R.InvalidParameterException);
    await expectError("ListFaces with a forged NextToken: InvalidPaginationTokenException instance",
        () => rek.send(new R.ListFacesCommand({ CollectionId: cid, NextToken: "not a token" })),
        "InvalidPaginationTokenException", R.InvalidPaginationTokenException);
    await expectError("IndexFaces of a text file: InvalidImageFormatException instance",
        () => rek.send(new R.IndexFacesCommand({ CollectionId: cid, Image: { Bytes: Buffer.from("not an image ".repeat(20)) } })),
        "InvalidImageFormatException", R.InvalidImageFormatException);
    await expectError("CompareFaces with a truncated JPEG: InvalidImageFormatException instance",
        () => rek.send(new R.CompareFacesCommand({
            SourceImage: img(ph.probe), TargetImage: { Bytes: readFileSync(ph.probe).subarray(0, 200) },
        })),
        "InvalidImageFormatException", R.InvalidImageFormatException);
    await expectError("Wrong secret key: InvalidSignatureException",
        () => badSecret.send(new R.ListCollectionsCommand({})), "InvalidSignatureException");
    await expectError("Unknown access key: UnrecognizedClientException",
        () => badKey.send(new R.ListCollectionsCommand({})), "UnrecognizedClientException");

    r = await send(rek, new R.DeleteCollectionCommand({ CollectionId: cid }));
    report("DeleteCollection: StatusCode 200", r.StatusCode === 200, show(r));
    await expectError("DescribeCollection after DeleteCollection: ResourceNotFoundException instance",
        () => rek.send(new R.DescribeCollectionCommand({ CollectionId: cid })),
        "ResourceNotFoundException", R.ResourceNotFoundException);

    report(`every member of ${calls} responses deserialised (Date timestamps, numbers, nothing dropped)`,
        shapeProblems.length === 0 && calls >= 25, shapeProblems.slice(0, 10).join("; "));
}

async function main() {
    if (!existsSync(BIN)) {
        report("facelink built", false, `${BIN} missing`);
        return;
    }
    if (!existsSync(join(ROOT, "models/face-api/model"))) {
        report("models present", true, "", "models/ absent (run scripts/setup)");
        return;
    }
    const ph = photos();
    console.log(`# photos: ${ph.mode}; node ${process.version}`);
    const port = await freePort();
    const tmp = mkdtempSync(join(tmpdir(), "fl-js-"));
    const { proc, up } = await startServer(port, join(tmp, "data"), join(tmp, "server.log"));
    try {
        if (!report("server up (/healthz)", up, readFileSync(join(tmp, "server.log"), "utf8"))) return;
        const mk = (accessKeyId, secretAccessKey) => {
            const c = new R.RekognitionClient({
                endpoint: `http://127.0.0.1:${port}`,
                region: "us-east-1",
                credentials: { accessKeyId, secretAccessKey },
                maxAttempts: 1,
            });
            captureRaw(c);
            return c;
        };
        try {
            await scenario(mk(AK, SK), mk(AK, SK + "x"), mk("AKIDUNKNOWN", SK), photos());
        } catch (e) {
            console.log(`# ${e.stack}`);
            report("scenario ran to the end", false, `${e.name}: ${e.message}`);
        }
    } finally {
        const rc = await stopServer(proc);
        report("server stops cleanly on SIGTERM", rc === 0, `exit ${rc}`);
        rmSync(tmp, { recursive: true, force: true });
    }
    console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

await main();
done();
