#!/usr/bin/env bash
# cli.sh: the facelink command as a user runs it: detect / embed / compare
# print the API's JSON; bad input exits 1 with the AWS error name; bad usage 2.
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
p=0 f=0 s=0
ok() { echo "ok - $1"; p=$((p + 1)); }
bad() { echo "not ok - $1"; f=$((f + 1)); }
skip() { echo "ok - $1 # SKIP $2"; s=$((s + 1)); }
img=models/face-api/demo/sample1.jpg
if [ ! -f "$img" ]; then
    skip "cli" "models absent (run scripts/setup)"
    echo "tests: $p passed, $f failed, $s skipped"; exit 0
fi
n=$("$B/facelink" detect "$img" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["FaceDetails"]))')
[ "$n" = 3 ] && ok "detect finds the 3 faces of sample1.jpg" || bad "detect found '$n' faces, want 3"
out=$("$B/facelink" detect "$img" --attributes ALL 2>/dev/null | python3 -c '
import json,sys; f=json.load(sys.stdin)["FaceDetails"][0]
print(all(k in f for k in ("AgeRange","Gender","Emotions","Smile","EyesOpen","MouthOpen","Landmarks","Pose","Quality")))')
[ "$out" = True ] && ok "detect --attributes ALL" || bad "detect --attributes ALL: $out"
dim=$("$B/facelink" embed "$img" --model mobilefacenet --max-faces 1 2>/dev/null | python3 -c '
import json,sys; r=json.load(sys.stdin); print(len(r["Faces"]), len(r["Faces"][0]["Embedding"]), r["FaceModel"]["Dimension"])')
[ "$dim" = "1 192 192" ] && ok "embed --model mobilefacenet" || bad "embed: $dim"
m=$("$B/facelink" compare "$img" "$img" 2>/dev/null | python3 -c '
import json,sys; r=json.load(sys.stdin); print(len(r["FaceMatches"]) >= 1 and r["FaceMatches"][0]["Similarity"] > 99)')
[ "$m" = True ] && ok "compare an image with itself matches at > 99" || bad "compare self: $m"
err=$("$B/facelink" detect Makefile 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ "$err" == InvalidImageFormatException* ]] && ok "detect of a non-image exits 1 with InvalidImageFormatException" || bad "non-image: rc $rc: $err"
"$B/facelink" detect >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok "usage error exits 2" || bad "usage error exit $rc"
echo "tests: $p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
