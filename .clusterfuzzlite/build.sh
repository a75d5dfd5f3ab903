#!/bin/bash -eu
# Builds cmacheck's fuzz targets the way ClusterFuzzLite and OSS-Fuzz expect: with the
# compilers and flags they set ($CC, $CXX, $CFLAGS, $CXXFLAGS, $LIB_FUZZING_ENGINE) into
# $OUT/<target>, with $OUT/<target>_seed_corpus.zip, <target>.dict and <target>.options.
SRC_DIR=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}/cmacheck
[ -d "$SRC_DIR" ] || SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${WORK:-/tmp}/cmacheck-ossfuzz
cmake -S "$SRC_DIR" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=OssFuzz \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DCMACHECK_OSSFUZZ=ON -DCMACHECK_LIB_FUZZING_ENGINE="$LIB_FUZZING_ENGINE"
targets="fuzz_lockstep fuzz_trace_parser fuzz_bitmap fuzz_buddy fuzz_concurrent"
cmake --build "$BUILD" --target $targets
for t in $targets; do
  cp "$BUILD/fuzz/$t" "$OUT/$t"
  [ -f "$SRC_DIR/fuzz/$t.dict" ] && cp "$SRC_DIR/fuzz/$t.dict" "$OUT/$t.dict"
  [ -f "$SRC_DIR/fuzz/$t.options" ] && cp "$SRC_DIR/fuzz/$t.options" "$OUT/$t.options"
  rm -f "$OUT/${t}_seed_corpus.zip"
  (cd "$SRC_DIR/corpus/$t" && cmake -E tar cf "$OUT/${t}_seed_corpus.zip" --format=zip -- $(ls))
done
