#!/usr/bin/env bash
# Puts a RustSec advisory database (a git clone) in DEST and prints DEST, for
# `cargo audit --db` and `cargo deny check advisories` (.ci/run).
#
# The database lives on github.com. A machine that cannot reach it (the CI
# machines so far) uses a local snapshot instead: ADVISORY_DB_SNAPSHOT, any
# git repository holding the database (by default where this workplace's
# `fetch` puts a copy of rustsec/advisory-db). Which one was used, and the
# date of its last advisory commit, go to stderr so the CI log says how old
# the answer is. No database at all: a message and exit status 1.
set -euo pipefail

dest=${1:-$HOME/.cache/dispatch-authz/advisory-db}
upstream=https://github.com/rustsec/advisory-db.git
snapshot=${ADVISORY_DB_SNAPSHOT:-/work/.mirror/rustsec+advisory-db/repo}

mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new"
if timeout 120 git clone --quiet --depth 1 "$upstream" "$dest.new" 2>/dev/null; then
  from=$upstream
elif [[ -d "$snapshot" ]] && git clone --quiet "$snapshot" "$dest.new"; then
  from="the local snapshot $snapshot"
else
  echo "no RustSec advisory database: $upstream cannot be reached and there is no snapshot at $snapshot (set ADVISORY_DB_SNAPSHOT)" >&2
  exit 1
fi
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "advisory database from $from, last commit $(git -C "$dest" log -1 --format=%cs)" >&2
echo "$dest"
