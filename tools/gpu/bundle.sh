#!/usr/bin/env bash
# Packs what the GPU tests need on the lent GPU machine, which has python3 with torch but no Java, Maven or network:
# a jlinked JRE (compressed), this worktree's compiled classes (main and test), the few third-party jars the tests
# load, and the scripts. Run here, in the worktree; then call the device with carry [".gpu"] and
#   bash .gpu/run_gpu_tests.sh
# The device runs the lead's checkout, so the bundle goes into that checkout's ignored .gpu/ folder.
set -euo pipefail
WT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="${1:-/work/main/.gpu}"
source "$WT/bin/java-home.sh"
M2="${M2_REPO:-$HOME/.m2/repository}"

cd "$WT"
./mvnw -q -o -pl vlm-cuda -am -DskipTests test-compile

mkdir -p "$DEST"
if [ ! -f "$DEST/jre.tar.xz" ]; then
  rm -rf /tmp/vlm4j-jre && mkdir -p /tmp/vlm4j-jre
  "$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,jdk.incubator.vector --strip-debug --no-man-pages \
      --no-header-files --compress=zip-9 --output /tmp/vlm4j-jre/jre
  tar -C /tmp/vlm4j-jre -cf - jre | xz -T0 -6 > "$DEST/jre.tar.xz"
fi
rm -rf "$DEST/classes" "$DEST/lib"
mkdir -p "$DEST/classes" "$DEST/lib"
cp -r vlm-core/target/classes "$DEST/classes/core"
cp -r vlm-engine/target/classes "$DEST/classes/engine"
cp -r vlm-cuda/target/classes "$DEST/classes/cuda"
cp -r vlm-cuda/target/test-classes "$DEST/classes/cuda-test"
for jar in com/fasterxml/jackson/core/jackson-databind/2.21.3/jackson-databind-2.21.3.jar \
           com/fasterxml/jackson/core/jackson-annotations/2.21/jackson-annotations-2.21.jar \
           com/fasterxml/jackson/core/jackson-core/2.21.3/jackson-core-2.21.3.jar \
           org/junit/platform/junit-platform-launcher/1.14.1/junit-platform-launcher-1.14.1.jar \
           org/junit/platform/junit-platform-engine/1.14.1/junit-platform-engine-1.14.1.jar \
           org/junit/platform/junit-platform-commons/1.14.1/junit-platform-commons-1.14.1.jar \
           org/opentest4j/opentest4j/1.3.0/opentest4j-1.3.0.jar \
           org/apiguardian/apiguardian-api/1.1.2/apiguardian-api-1.1.2.jar \
           org/junit/jupiter/junit-jupiter-api/5.14.1/junit-jupiter-api-5.14.1.jar \
           org/junit/jupiter/junit-jupiter-params/5.14.1/junit-jupiter-params-5.14.1.jar \
           org/junit/jupiter/junit-jupiter-engine/5.14.1/junit-jupiter-engine-5.14.1.jar; do
  cp "$M2/$jar" "$DEST/lib/"
done
cp tools/gpu/make_references.py tools/gpu/run_gpu_tests.sh "$DEST/"
du -sh "$DEST"
