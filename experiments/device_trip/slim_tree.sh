#!/usr/bin/env bash
# on: a temporary branch whose tree holds no results but the SST-2 slice's, so that the working tree and
# .devcarry/ fit the device machine's 64 MiB; off: back to the branch you were on, the temporary one deleted.
set -euo pipefail
case "${1:-}" in
  on)  git diff --quiet && git diff --cached --quiet || { echo "commit or stash your changes first" >&2; exit 2; }
       git rev-parse --abbrev-ref HEAD > .git/device-trip-branch
       git checkout -q -b device-trip-slim
       git ls-files results | grep -v '^results/recipe_sst2_cpu/' | xargs git rm -q
       git commit -qm "device trip: slim tree (temporary, never pushed)"
       echo "tree: $(git ls-files -z | xargs -0 du -cb | tail -n 1 | cut -f1) bytes" ;;
  off) git checkout -q "$(cat .git/device-trip-branch)" && git branch -q -D device-trip-slim && rm .git/device-trip-branch ;;
  *)   echo "usage: slim_tree.sh on|off" >&2; exit 2 ;;
esac
