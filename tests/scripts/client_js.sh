#!/usr/bin/env bash
# client_js.sh: the AWS SDK for JavaScript v3 (@aws-sdk/client-rekognition, pinned in
# tests/clients/js/package-lock.json, installed by scripts/setup with npm ci) against
# a real `facelink serve`: tests/clients/js/client.mjs. Skips, visibly, when node or
# the SDK is missing.
cd "$(dirname "$0")/../.." || exit 1
js=tests/clients/js
if ! command -v node >/dev/null; then
    echo "ok 1 - JavaScript SDK client # SKIP node missing (run scripts/setup)"
    echo "tests: 0 passed, 0 failed, 1 skipped"; exit 0
fi
if [ ! -f "$js/node_modules/@aws-sdk/client-rekognition/package.json" ]; then
    echo "ok 1 - JavaScript SDK client # SKIP $js/node_modules absent (run scripts/setup)"
    echo "tests: 0 passed, 0 failed, 1 skipped"; exit 0
fi
# The pinned SDK supports Node 20; its warning is about SDK versions published after
# January 2027, which the lock does not install.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec node "$js/client.mjs"
