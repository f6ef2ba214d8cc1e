#!/bin/sh
# Regenerates src/server/e2b/gen from E2B's envd protos (src/server/e2b/proto) with buf and
# protoc-gen-es. target=js+dts: protoc-gen-es's target=ts emits `enum`, which Node's type
# stripping rejects, so we commit plain ES modules plus their declarations instead.
# Usage: sh scripts/gen-e2b.sh [OUT_DIR]   (default src/server/e2b/gen; the freshness test uses a temp dir)
set -eu
cd "$(dirname "$0")/.."
out=${1:-$PWD/src/server/e2b/gen}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/buf.gen.yaml" <<YAML
version: v2
plugins:
  - local: $PWD/node_modules/.bin/protoc-gen-es
    out: $out
    opt: [target=js+dts, import_extension=js]
YAML
rm -rf "$out"
node_modules/.bin/buf generate src/server/e2b/proto --template "$tmp/buf.gen.yaml"
printf 'gen-e2b: wrote %s\n' "$(cd "$out" && find . -type f | sort | tr '\n' ' ')"
