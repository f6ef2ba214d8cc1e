#!/bin/sh
# Regenerates src/server/e2b/gen from E2B's envd protos (src/server/e2b/proto) with buf and
# protoc-gen-es. target=js+dts: protoc-gen-es's target=ts emits `enum`, which Node's type
# stripping rejects, so we commit plain ES modules plus their declarations instead.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/buf.gen.yaml" <<YAML
version: v2
plugins:
  - local: $PWD/node_modules/.bin/protoc-gen-es
    out: $PWD/src/server/e2b/gen
    opt: [target=js+dts, import_extension=js]
YAML
rm -rf src/server/e2b/gen
node_modules/.bin/buf generate src/server/e2b/proto --template "$tmp/buf.gen.yaml"
printf 'gen-e2b: wrote %s\n' "$(cd src/server/e2b/gen && find . -type f | sort | tr '\n' ' ')"
