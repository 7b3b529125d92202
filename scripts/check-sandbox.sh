#!/usr/bin/env bash
# bubblewrap (bwrap) puts `tfsconvert validate`'s server in its own namespaces; setpriv (util-linux)
# drops root. Installs bubblewrap with apt-get when bwrap is missing and we are root.
set -euo pipefail

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bwrap not found: installing bubblewrap with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "error: bwrap not found. tfsconvert validate needs it to isolate the server (docs/validate.md)." >&2
    echo "  fix: sudo apt-get install bubblewrap" >&2
    exit 3
  fi
fi
if [ "$(id -u)" = 0 ] && ! command -v setpriv >/dev/null 2>&1; then
  echo "error: setpriv not found; as root, tfsconvert validate needs it to drop root (docs/validate.md)." >&2
  echo "  fix: apt-get install util-linux" >&2
  exit 3
fi
