#!/usr/bin/env bash
# client_awscli.sh: Debian's AWS CLI (awscli 2.9.19, /usr/bin/aws) against a real
# `facelink serve`, as a user types it: aws rekognition ... --endpoint-url.
#
# Starts build/facelink serve ($BUILD/facelink) on a free 127.0.0.1 port with a
# temporary --data-dir and one access key, so the CLI signs every request (SigV4)
# and the server verifies it. Scenario (photos in tests/clients/scenario.json):
# collections, index-faces of LFW photos with --external-image-id, list-faces
# paginated by the CLI (--page-size; --max-items/--starting-token), search-faces,
# search-faces-by-image, compare-faces, detect-faces, tags, deletes, and the error
# cases with the CLI's exit code 254 and "An error occurred (Code)" message.
# awscli 2.9.19 predates the Users operations (no create-user); the boto3 and JS
# scripts cover those. Without ../shared the face-api demo photos are used and the
# LFW assertions are skipped. Independent calls run in parallel (each CLI start
# costs about a second). Prints TAP lines and "tests: P passed, F failed, S skipped".
# check NAME COND DETAIL evaluates COND later, so its variables sit in single quotes:
# shellcheck disable=SC2016,SC2034
cd "$(dirname "$0")/../.." || exit 1
B=${BUILD:-build}
AWS=${FL_AWS_CLI:-/usr/bin/aws}
PY=/usr/bin/python3
T0=$(date +%s.%N)
n=0 p=0 f=0 s=0
ok() { n=$((n + 1)); p=$((p + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); f=$((f + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && printf '# %s\n' "${2:0:600}"; }
skip() { n=$((n + 1)); s=$((s + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { if eval "$2"; then ok "$1"; else bad "$1" "${3:-}"; fi; }
finish() {
    echo "# $($PY -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$T0" "$(date +%s.%N)")"
    echo "1..$n"
    echo "tests: $p passed, $f failed, $s skipped"
    [ "$f" -eq 0 ]
    exit
}

if [ ! -x "$AWS" ]; then
    skip "AWS CLI client" "$AWS missing (Debian package awscli; run scripts/setup)"; finish
fi
if [ ! -x "$B/facelink" ]; then bad "facelink built" "$B/facelink missing"; finish; fi
if [ ! -d models/face-api/model ]; then skip "AWS CLI client" "models/ absent (run scripts/setup)"; finish; fi
echo "# $("$AWS" --version 2>&1)"

# ---- photos ----
read -r MODE LDIR < <($PY - <<'EOF'
import json, os
sc = json.load(open("tests/clients/scenario.json"))
print("lfw" if os.path.isdir(sc["lfw"]["dir"]) else "demo", sc["lfw"]["dir"] if os.path.isdir(sc["lfw"]["dir"]) else sc["demo"]["dir"])
EOF
)
sc() { $PY -c "import json,sys; s=json.load(open('tests/clients/scenario.json'))['$MODE']; print($1)"; }
photo() { if [ "$MODE" = lfw ]; then echo "$LDIR/${1%_[0-9][0-9][0-9][0-9]}/$1.jpg"; else echo "$LDIR/$1.jpg"; fi; }
read -r -a GALLERY <<<"$(sc '" ".join(s["gallery"])')"
read -r U1 U2 <<<"$(sc '" ".join(s["user"]["faces"])')"
PROBE=$(photo "$(sc 's["same"]["probe"]')")
PERSON=$(sc 's["same"]["person"]')
OTHER=$(sc 's["other"] or ""')
[ -n "$OTHER" ] && OTHER=$(photo "$OTHER")
LFW_SKIP="LFW absent (../shared/data/lfw): demo photos only"
echo "# photos: $MODE"

# ---- server ----
TMP=$(mktemp -d /tmp/fl-awscli-XXXXXX)
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
AK=AKIDFACELINKCLI SK=awscli-test-secret
"$B/facelink" serve --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" --keys "$AK:$SK" \
    --workers 2 --queue 64 --log-level warn >"$TMP/server.log" 2>&1 &
SPID=$!
cleanup() {
    if [ -n "${SPID:-}" ] && kill -0 "$SPID" 2>/dev/null; then kill -TERM "$SPID"; wait "$SPID"; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
up=0
for _ in $(seq 200); do
    kill -0 "$SPID" 2>/dev/null || break
    if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then up=1; break; fi
    sleep 0.05
done
if [ $up = 1 ]; then ok "server up (/healthz)"; else bad "server up (/healthz)" "$(cat "$TMP/server.log")"; finish; fi

# The CLI sees only these: no user config, no pager, no retries, no metadata service.
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$TMP/none AWS_SHARED_CREDENTIALS_FILE=$TMP/none AWS_PAGER="" \
    AWS_MAX_ATTEMPTS=1 AWS_EC2_METADATA_DISABLED=true
EP=(--endpoint-url "http://127.0.0.1:$PORT")
# Each CLI start costs about a second of Python start-up, so independent calls run
# in parallel (at most 13 at once; the server's queue of 64 never throttles them):
# `start NAME ARGS...` runs `aws rekognition ARGS` in the background, `get NAME`
# waits for it and sets OUT, ERR and RC; `rek ARGS` is both at once.
declare -A PIDS
start() {
    local name=$1; shift
    ( "$AWS" rekognition "$@" "${EP[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err"; echo $? >"$TMP/$name.rc" ) &
    PIDS[$name]=$!
}
get() {
    wait "${PIDS[$1]}"
    OUT=$(cat "$TMP/$1.out"); ERR=$(cat "$TMP/$1.err"); RC=$(cat "$TMP/$1.rc")
}
rek() { start now "$@"; get now; }
# js EXPR: evaluate a Python expression over the last JSON output (as r).
js() { $PY -c "import json,sys; r=json.loads(sys.argv[1]); print($1)" "$OUT"; }

CID=cli-lfw
unknown=11111111-2222-4333-8444-555555555555
echo "this is not an image" >"$TMP/not-an-image.jpg"

# ---- phase 1: the collection ----
rek create-collection --collection-id $CID --tags suite=cli
check "create-collection: StatusCode 200 and the ARN" \
    '[ $RC = 0 ] && [ "$(js "r[\"StatusCode\"], r[\"CollectionArn\"].endswith(\":collection/$CID\")")" = "200 True" ]' "$RC $OUT $ERR"

# ---- phase 2: index-faces, with the collection calls and the error cases ----
i=0
for e in "${GALLERY[@]}"; do
    start "index$i" index-faces --collection-id $CID --image-bytes "fileb://$(photo "$e")" --external-image-id "$e" \
        --max-faces 1 --query 'FaceRecords[].Face.[ExternalImageId,FaceId]' --output text
    i=$((i + 1))
done
start dup create-collection --collection-id $CID
start list-collections list-collections
ERRCASES=()
errcase() { # NAME CODE OP ARGS...
    local name=$1 code=$2 op=$3; shift 3
    start "e.$name" "$@"
    ERRCASES+=("$name|$code|$op")
}
errcase missing ResourceNotFoundException DescribeCollection describe-collection --collection-id no-such-collection
errcase bad-id InvalidParameterException CreateCollection create-collection --collection-id 'bad id!'
errcase not-image InvalidImageFormatException IndexFaces index-faces --collection-id $CID --image-bytes "fileb://$TMP/not-an-image.jpg"
AWS_SECRET_ACCESS_KEY=wrong-secret errcase bad-secret InvalidSignatureException ListCollections list-collections
AWS_ACCESS_KEY_ID=AKIDUNKNOWN errcase bad-key UnrecognizedClientException ListCollections list-collections

declare -A FACE
i=0
for e in "${GALLERY[@]}"; do
    get "index$i"; i=$((i + 1))
    read -r got fid <<<"$OUT"
    [ "$RC" = 0 ] && [ "$got" = "$e" ] && FACE[$e]=$fid
done
check "index-faces: ${#GALLERY[@]} photos, one face each, --external-image-id echoed" \
    '[ ${#FACE[@]} = ${#GALLERY[@]} ]' "indexed: ${!FACE[*]}; last: $RC $OUT $ERR"
get dup
check "create-collection again: exit 254, ResourceAlreadyExistsException" \
    '[ $RC = 254 ] && [[ "$ERR" == *"An error occurred (ResourceAlreadyExistsException) when calling the CreateCollection operation"*": The collection id: $CID already exists"* ]]' "$RC $ERR"
get list-collections
check "list-collections lists it" '[ $RC = 0 ] && [ "$(js "\"$CID\" in r[\"CollectionIds\"]")" = True ]' "$RC $OUT $ERR"
for e in "${ERRCASES[@]}"; do
    IFS='|' read -r name code op <<<"$e"
    get "e.$name"
    check "error $name: exit 254, An error occurred ($code) when calling the $op operation" \
        '[ "$RC" = 254 ] && [[ "$ERR" == *"An error occurred ($code) when calling the $op operation"*": "?* ]]' "$RC $ERR"
done

# ---- phase 3: reads over the indexed faces ----
start describe describe-collection --collection-id $CID
start pages list-faces --collection-id $CID --page-size 2 --query 'Faces[].ExternalImageId' --output text
start items list-faces --collection-id $CID --max-items 2
start search search-faces --collection-id $CID --face-id "${FACE[$U1]}"
start sfbi search-faces-by-image --collection-id $CID --image-bytes "fileb://$PROBE"
[ -n "$OTHER" ] && start sfbi-other search-faces-by-image --collection-id $CID --image-bytes "fileb://$OTHER" \
    --query 'length(FaceMatches)'
# --cli-input-json: blobs in the JSON are base64 (the CLI v2 default binary format).
$PY -c 'import base64,json,sys; print(json.dumps({"SourceImage": {"Bytes": base64.b64encode(open(sys.argv[1],"rb").read()).decode()}}))' \
    "$PROBE" >"$TMP/compare.json"
start compare compare-faces --cli-input-json "file://$TMP/compare.json" \
    --target-image-bytes "fileb://$(photo "$U1")" --query 'FaceMatches[0].Similarity' --output text
[ -n "$OTHER" ] && start compare-other compare-faces --source-image-bytes "fileb://$PROBE" \
    --target-image-bytes "fileb://$OTHER" --query '[length(FaceMatches), length(UnmatchedFaces)]' --output text
start detect detect-faces --image-bytes fileb://models/face-api/demo/sample1.jpg --attributes ALL \
    --query 'FaceDetails[].[Confidence, AgeRange.Low, Gender.Value, length(Landmarks)]' --output text

get describe
ARN=$(js 'r["CollectionARN"]')
check "describe-collection: FaceCount, CreationTimestamp rendered as an ISO-8601 date near now" \
    '[ $RC = 0 ] && [ "$(js "r[\"FaceCount\"], abs(__import__(\"datetime\").datetime.fromisoformat(r[\"CreationTimestamp\"]).timestamp() - __import__(\"time\").time()) < 300")" = "${#GALLERY[@]} True" ]' "$RC $OUT $ERR"
start tag tag-resource --resource-arn "$ARN" --tags team=vision,env=test
get pages
want=$(printf '%s\n' "${GALLERY[@]}" | sort | tr '\n' ' ')
check "list-faces --page-size 2: the CLI follows NextToken to every face" \
    '[ $RC = 0 ] && [ "$(tr "\t" "\n" <<<"$OUT" | sort | tr "\n" " ")" = "$want" ]' "$RC $OUT $ERR"
get items
tok=$(js 'r.get("NextToken", "")')
first=$(js '" ".join(f["ExternalImageId"] for f in r["Faces"])')
start items2 list-faces --collection-id $CID --max-items 2 --starting-token "$tok"
get search
if [ "$MODE" = lfw ]; then
    check "search-faces (LFW): the other indexed photo of the same person is the top match" \
        '[ $RC = 0 ] && [ "$(js "r[\"FaceMatches\"][0][\"Face\"][\"FaceId\"] == \"${FACE[$U2]}\" and r[\"FaceMatches\"][0][\"Similarity\"] >= 80")" = True ]' "$RC $OUT $ERR"
else
    check "search-faces: the searched face itself is not returned" \
        '[ $RC = 0 ] && [ "$(js "all(m[\"Face\"][\"FaceId\"] != \"${FACE[$U1]}\" for m in r[\"FaceMatches\"])")" = True ]' "$RC $OUT $ERR"
fi
get sfbi
check "search-faces-by-image: the same person is the top match above the default threshold ($MODE)" \
    '[ $RC = 0 ] && [ "$(js "r[\"FaceMatches\"][0][\"Face\"][\"ExternalImageId\"].startswith(\"$PERSON\") and r[\"FaceMatches\"][0][\"Similarity\"] >= 80")" = True ]' "$RC ${OUT:0:400} $ERR"
if [ -n "$OTHER" ]; then
    get sfbi-other
    check "search-faces-by-image (LFW): a different person is not returned at the default threshold" \
        '[ $RC = 0 ] && [ "$OUT" = 0 ]' "$RC $OUT $ERR"
else
    skip "search-faces-by-image (LFW): a different person" "$LFW_SKIP"
fi
get compare
check "compare-faces (--cli-input-json with base64 Bytes, --target-image-bytes): same person above 80" \
    '[ $RC = 0 ] && $PY -c "import sys; sys.exit(not float(sys.argv[1]) >= 80)" "$OUT"' "$RC $OUT $ERR"
if [ -n "$OTHER" ]; then
    get compare-other
    check "compare-faces (LFW): a different person is unmatched at the default threshold" \
        '[ $RC = 0 ] && [ "$(tr -s "\t " " " <<<"$OUT")" = "0 1" ]' "$RC $OUT $ERR"
else
    skip "compare-faces (LFW): a different person" "$LFW_SKIP"
fi
get detect
check "detect-faces --attributes ALL: the 3 faces of sample1.jpg" \
    '[ $RC = 0 ] && [ $(wc -l <<<"$OUT") = 3 ]' "$RC $OUT $ERR"
get items2
second=$(js '" ".join(f["ExternalImageId"] for f in r["Faces"])')
check "list-faces --max-items 2 / --starting-token: two disjoint pages of two" \
    '[ -n "$tok" ] && [ $(wc -w <<<"$first $second") = 4 ] && [ $(tr " " "\n" <<<"$first $second" | sort -u | wc -l) = 4 ]' \
    "first=$first second=$second tok=$tok"

# ---- phase 4: writes ----
get tag; rc1=$RC
start untag untag-resource --resource-arn "$ARN" --tag-keys env suite
start delete delete-faces --collection-id $CID --face-ids "${FACE[$U1]}" $unknown --query 'DeletedFaces' --output text
get untag; rc2=$RC
rek list-tags-for-resource --resource-arn "$ARN" --query 'Tags' --output json
check "tag-resource, untag-resource, list-tags-for-resource" \
    '[ "$rc1$rc2$RC" = 000 ] && [ "$(js "r == {\"team\": \"vision\"}")" = True ]' "$rc1 $rc2 $RC $OUT $ERR"
get delete
check "delete-faces: the face deleted, an unknown id not" '[ $RC = 0 ] && [ "$OUT" = "${FACE[$U1]}" ]' "$RC $OUT $ERR"
rek delete-collection --collection-id $CID --query StatusCode
check "delete-collection: StatusCode 200" '[ $RC = 0 ] && [ "$OUT" = 200 ]' "$RC $OUT $ERR"
rek describe-collection --collection-id $CID
check "describe-collection after delete-collection: ResourceNotFoundException" \
    '[ $RC = 254 ] && [[ "$ERR" == *"(ResourceNotFoundException)"*"The collection id: $CID does not exist"* ]]' "$RC $ERR"

kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=
check "server stops cleanly on SIGTERM" '[ $rc = 0 ]' "exit $rc"
finish
