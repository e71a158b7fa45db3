#!/usr/bin/env bash
# Build the C ceiling server and load generator into bench/bin/ with the system gcc.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p bin
CC=${CC:-gcc}
CFLAGS=${CFLAGS:--O2 -g -Wall -Wextra -std=gnu11}
$CC $CFLAGS -o bin/ceiling c/ceiling.c
$CC $CFLAGS -o bin/loadgen c/loadgen.c -lm
echo "built bench/bin/ceiling bench/bin/loadgen"
