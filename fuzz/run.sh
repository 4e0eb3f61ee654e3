#!/usr/bin/env bash
# Builds and runs one fuzz target for a bounded time: bash fuzz/run.sh TARGET SECONDS
#
# On the stable toolchain: cargo-fuzz passes nightly-only flags (-Zsanitizer), which
# RUSTC_BOOTSTRAP=1 lets stable rustc accept. SANITIZER=address (the default) needs the
# ASan runtime that rustc ships; SANITIZER=none builds without one (the protocols crate has
# no unsafe code, so only its dependencies' unsafe code is what ASan would watch).
#
# The seeds in fuzz/corpus/TARGET are read, never written: new inputs go to a scratch
# corpus under fuzz/target/work-corpus/TARGET, kept between runs. A crash is saved in
# fuzz/artifacts/TARGET/ and the script exits non-zero.
set -euo pipefail
target=${1:?usage: run.sh TARGET SECONDS}
seconds=${2:?usage: run.sh TARGET SECONDS}
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
sanitizer=${SANITIZER:-address}
work=target/work-corpus/$target
mkdir -p "$work" "corpus/$target"
cargo fuzz run -s "$sanitizer" "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
