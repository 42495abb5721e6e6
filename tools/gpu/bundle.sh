#!/usr/bin/env bash
# Packs what the GPU tests and benchmarks need on the lent GPU machine, which has python3 with torch but no Java, Maven
# or network: a jlinked JRE (compressed; no java.desktop — the GPU tests and benchmarks pass pixel tensors, never
# decode images), this worktree's compiled classes (main and test), vlm-cuda's test classpath jars (the tokenizer jar
# cut down to its linux-x86_64 library, to stay under the device's 64 MiB transfer limit), the `vlm` command line's
# classes as one jar with picocli (for `vlm bench` and `vlm random-checkpoint`; not the server's libraries, which those
# never load), and the scripts. Run here, in the worktree; then call the device with carry [".gpu"] and
#   bash .gpu/run_gpu_tests.sh          (GPU tests)
#   bash benchmarks/run_gpu.sh ...      (issue 6's benchmarks beside HF transformers; see docs/benchmarks.md)
# With --base REV, REV's classes go into .gpu/base for an A/B on one lease (run_gpu.sh --ab): those of the modules whose
# main sources differ from REV's as jars (one file each: the transfer counts
# every file's overhead; vlm-cuda's is ~0.3 MB, which fits the limit beside the test bundle).
# The device runs the lead's checkout, so the bundle goes into that checkout's ignored .gpu/ folder.
set -euo pipefail
WT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH_ONLY=0 # --bench-only: leave out the test classes and JUnit (about 2 MB), for benchmark runs
if [ "${1:-}" = "--bench-only" ]; then BENCH_ONLY=1; shift; fi
BASE_REV="" # --base REV: also REV's vlm-core, vlm-engine, vlm-cuda and vlm-server classes in .gpu/base, for run_gpu.sh --ab
if [ "${1:-}" = "--base" ]; then BASE_REV="$2"; shift 2; fi
DEST="${1:-/work/main/.gpu}"
source "$WT/bin/java-home.sh"
M2="${M2_REPO:-$HOME/.m2/repository}"

cd "$WT"
# test-compile in the same run lets the reactor resolve vlm-core's test-jar to its test classes
./mvnw -q -o -pl vlm-cuda -am -DskipTests test-compile dependency:build-classpath -Dmdep.includeScope=test \
    -Dmdep.outputFile=/tmp/vlm4j-cuda-cp.txt
# vlm-server last in its reactor, so the file ends as its runtime class path; test-compile again, since
# dependency:build-classpath resolves the test dependencies of every module in the reactor (without it, vlm-core's
# test-jar had to be in the local repository from an earlier `install`)
./mvnw -q -o -pl vlm-server -am -DskipTests test-compile dependency:build-classpath -Dmdep.includeScope=runtime \
    -Dmdep.outputFile=/tmp/vlm4j-server-cp.txt

mkdir -p "$DEST"
# jdk.jfr: Flight Recorder, to profile the host's allocations and pauses on the GPU machine
# (-XX:StartFlightRecording through run_gpu.sh's JAVA_OPTS). The runtime is rebuilt when this list changes.
MODULES=java.base,java.logging,jdk.incubator.vector,java.management,java.sql,java.xml,java.net.http,jdk.unsupported,jdk.jfr
if [ ! -f "$DEST/jre.tar.xz" ] || [ "$(cat "$DEST/jre.modules" 2>/dev/null)" != "$MODULES" ]; then
  rm -rf /tmp/vlm4j-jre && mkdir -p /tmp/vlm4j-jre
  "$JAVA_HOME/bin/jlink" --add-modules "$MODULES" \
      --strip-debug --no-man-pages \
      --no-header-files --compress=zip-9 --output /tmp/vlm4j-jre/jre
  # jlink leaves the JDK's native symbol tables in place (libjvm.so: 30 MB, 25 MB stripped): ~1 MB less to send
  find /tmp/vlm4j-jre/jre -name '*.so' -exec strip --strip-unneeded {} \;
  tar -C /tmp/vlm4j-jre -cf - jre | xz -T0 -9e > "$DEST/jre.tar.xz"
  echo "$MODULES" > "$DEST/jre.modules"
fi
rm -rf "$DEST/classes" "$DEST/lib"
mkdir -p "$DEST/classes" "$DEST/lib"
cp -r vlm-core/target/classes "$DEST/classes/core"
cp -r vlm-engine/target/classes "$DEST/classes/engine"
cp -r vlm-cuda/target/classes "$DEST/classes/cuda"
if [ "$BENCH_ONLY" = 0 ]; then
  cp -r vlm-cuda/target/test-classes "$DEST/classes/cuda-test"
  # vlm-core's test jar (its shared test helpers, dev.vlm4j.testing), which the loop below skips with the modules
  mkdir -p "$DEST/classes/core-test/dev/vlm4j" && cp -r vlm-core/target/test-classes/dev/vlm4j/testing "$DEST/classes/core-test/dev/vlm4j/"
fi
for jar in $(tr ':' ' ' < /tmp/vlm4j-cuda-cp.txt); do
  [ -d "$jar" ] && continue                     # reactor modules: the classes folders above
  case "$(basename "$jar")" in
    vlm-*) ;;                                   # the classes folders above
    junit-*|opentest4j-*|apiguardian-*) [ "$BENCH_ONLY" = 1 ] || cp "$jar" "$DEST/lib/" ;;
    imageio-*|common-image-*|common-io-*|common-lang-*|commons-imaging-*) ;;  # image decoding: the runtime has no java.desktop
    tokenizers-*.jar)                           # native libraries for five platforms; keep linux-x86_64's
      # and without its symbol table (15.5 MB -> 11.8 MB unpacked)
      rm -rf /tmp/vlm4j-tok && mkdir -p /tmp/vlm4j-tok && (cd /tmp/vlm4j-tok && unzip -q "$jar" -x 'native/lib/win-*' 'native/lib/osx-*' 'native/lib/linux-aarch64/*' \
        && find . -name '*.so' -exec strip --strip-unneeded {} \; && zip -q -9 -r "$DEST/lib/$(basename "$jar")" .) ;;
    jna-*.jar)                                  # its native dispatch library for 30 platforms; keep linux-x86-64's
      # (2.0 -> 0.3 MB: the bundle had come within ~100 KiB of the device's transfer limit)
      rm -rf /tmp/vlm4j-jna && mkdir -p /tmp/vlm4j-jna && (cd /tmp/vlm4j-jna && unzip -q "$jar" \
        && find com/sun/jna -mindepth 2 -maxdepth 2 -type f \( -name '*.so' -o -name '*.a' -o -name '*.dll' -o -name '*.jnilib' \) \
             ! -path 'com/sun/jna/linux-x86-64/*' -delete \
        && zip -q -9 -r "$DEST/lib/$(basename "$jar")" .) ;;
    *) cp "$jar" "$DEST/lib/" ;;
  esac
done
"$JAVA_HOME/bin/jar" --create --file "$DEST/lib/vlm-server-classes.jar" -C vlm-server/target/classes .
for jar in $(tr ':' ' ' < /tmp/vlm4j-server-cp.txt); do
  case "$(basename "$jar")" in
    picocli-*|slf4j-simple-*) cp "$jar" "$DEST/lib/" ;;  # only these: the rest is in the GPU tests' jars or serves HTTP
  esac
done
cp tools/gpu/make_references.py tools/gpu/run_gpu_tests.sh "$DEST/"
# The commit the classes were built from, for run_gpu.sh to print: the device's copy of the checkout may carry older git
# metadata (a table built from 5e06728 printed "commit bfc8d2c").
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' with uncommitted changes')" > "$DEST/commit"
rm -rf "$DEST/base"
if [ -n "$BASE_REV" ]; then
  # REV built in a worktree of its own; the runtime and jars stay this tree's (a base whose dependencies differ needs
  # more than this).
  BASE_WT="$(mktemp -d)/base"
  git worktree add -q --detach "$BASE_WT" "$BASE_REV"
  (cd "$BASE_WT" && ./mvnw -q -o -pl vlm-cuda,vlm-server -am -DskipTests compile)
  mkdir -p "$DEST/base"
  # only the modules whose sources differ from REV's: run_gpu.sh takes the others from this tree
  for m in core engine cuda server; do
    git diff --quiet "$BASE_REV" -- "vlm-$m/src/main" \
        || "$JAVA_HOME/bin/jar" --create --file "$DEST/base/$m.jar" -C "$BASE_WT/vlm-$m/target/classes" .
  done
  echo "base: $(git rev-parse --short "$BASE_REV") in $DEST/base: $(ls "$DEST/base" | tr '\n' ' ')"
  git worktree remove --force "$BASE_WT"
fi
du -sh "$DEST"
# what the transfer counts, as a tar would: each file rounded up to 512 bytes, plus a 512-byte header (the device
# refused a tree whose plain sizes summed to just under the limit)
kib=$({ git ls-files -z | xargs -0 stat -c %s; find "$DEST" -type f -printf '%s\n'; } \
    | awk '{s += int(($1 + 511) / 512) * 512 + 512} END {print int(s / 1024)}')
echo "transfer: ~$kib KiB of this worktree's tracked files + $DEST (limit 65536 KiB)"
if [ "$kib" -gt 65536 ]; then
  echo "over the device's transfer limit: the call would be refused; leave out --base, or use --bench-only" >&2
  exit 1
fi
