#!/usr/bin/env bash
# Checks that the README's two set-up commands share one build (docs/ARCHITECTURE.md, "One
# build for both set-up commands"): every crate that both `cargo run -p keyward` and
# `cargo test --workspace` build must get the same features from both, or the second rebuilds
# it and everything depending on it. Also checks that benches/Cargo.lock (the benchmarks'
# separate workspace) pins the same versions as Cargo.lock. Cheap: no compilation.
#
#   scripts/check-one-build.sh        exit 1 and name the crates when something differs
set -euo pipefail
cd "$(dirname "$0")/.."

features() { # cargo tree arguments...: "package<TAB>[features]" lines, sorted
  cargo tree "$@" --prefix none --format '{p} [{f}]' --no-dedupe \
    | sed -n 's/^\(.*\) \(\[[^]]*\]\)$/\1\t\2/p' | sort -u
}
run=$(features -p keyward -e normal,build)
test=$(features --workspace -e normal,build,dev)
differ=$(join -t $'\t' <(echo "$run") <(echo "$test") | awk -F'\t' '$2 != $3')
status=0
if [[ -n $differ ]]; then
  echo "built with other features by \`cargo test --workspace\` than by \`cargo run -p keyward\`:" >&2
  echo "package	run	test" >&2
  echo "$differ" >&2
  status=1
fi

versions() { # a Cargo.lock: "name version" lines
  awk '/^name = /{n=$3} /^version = /{if (n != "") print n, $3; n=""}' "$1" | tr -d '"' | sort -u
}
# A crate pinned in benches/Cargo.lock at a version Cargo.lock does not have, though Cargo.lock
# has one semver-compatible with it (same major, or same minor below 1.0): a semver-incompatible
# one is another crate to cargo (dhat, a benchmark's, needs rustc-hash 1 beside the server's 2).
drift=$(awk 'function compat(v, p) { split(v, p, "."); return p[1] == "0" ? "0." p[2] : p[1] }
             NR == FNR { main[$1 " " $2] = 1; line[$1 " " compat($2)] = 1; next }
             (($1 " " compat($2)) in line) && !(($1 " " $2) in main) { print $1 "@" $2 }' \
        <(versions Cargo.lock) <(versions benches/Cargo.lock))
if [[ -n $drift ]]; then
  echo "benches/Cargo.lock pins other versions than Cargo.lock (refresh it: docs/BENCHMARKS.md):" >&2
  echo "$drift" >&2
  status=1
fi
[[ $status -eq 0 ]] && echo "one build: same features for every shared crate; benches/Cargo.lock in step"
exit $status
