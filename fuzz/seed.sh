#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the repository's own inputs: scenarios, fixtures,
# the bad-input corpora, selectors found in them and the feed lists of the runner
# scenarios. Run from anywhere; the corpus folders are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
mkdir -p "$c/scenario" "$c/manifest" "$c/selector" "$c/feed"
for f in $(find scenarios tests/scenarios tests/bad_scenarios tests/run_scenarios tests/run_mismatch -name '*.yaml'); do
  cp "$f" "$c/scenario/$(echo "$f" | tr / _)"
done
for f in $(find fixtures tests/bad_input -name '*.yaml'); do
  cp "$f" "$c/manifest/$(echo "$f" | tr / _)"
done
# Every selector written in a fixture or scenario, one file each.
grep -rhoE "[sS]elector: *['\"]?[^'\"#]+" fixtures scenarios tests/bad_input tests/scenarios \
  | sed -E "s/^[a-zA-Z]*[sS]elector: *['\"]?//" | sort -u | nl -nln | while read -r n sel; do
  printf '%s' "$sel" > "$c/selector/sel-$n"
done
# Feed lists: the first byte picks the format (see policylab::fuzz::feed).
i=0
for f in $(find tests/run_scenarios/feeds fixtures -name '*.txt' -o -name '*.json' -o -name '*.csv' | sort); do
  for pick in '\x00' '\x01' '\x03' '\x04'; do
    i=$((i + 1))
    { printf "$pick"; cat "$f"; } > "$c/feed/feed-$i"
  done
done
echo "seeded: $(ls "$c/scenario" | wc -l) scenarios, $(ls "$c/manifest" | wc -l) manifests, $(ls "$c/selector" | wc -l) selectors, $(ls "$c/feed" | wc -l) feeds"
