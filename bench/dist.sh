#!/usr/bin/env bash
# bench/dist.sh: training throughput of P ranks x T threads (`xlmr bench dist`,
# the data-parallel step of `xlmr train`: gradient caching, gradient exchange,
# AdamW) under mpirun, one line per layout.
#
#   bench/dist.sh [--layouts "1x2 2x1"] [xlmr bench options...]
#     --layouts L  space-separated PxT layouts (default "1x2 2x1": this 2-core machine)
#   e.g. bench/dist.sh --layouts "1x16 2x8 4x4 8x2" --size base --batch 32
# Environment: XLMR_MPI (default ./xlmr-mpi, from make mpi).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
XMPI=${XLMR_MPI:-$ROOT/xlmr-mpi}
LAYOUTS="1x2 2x1"
if [ "${1:-}" = --layouts ]; then LAYOUTS=$2; shift 2; fi
[ -x "$XMPI" ] || { echo "dist.sh: $XMPI not built (run make mpi)" >&2; exit 1; }
MPIRUN=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
for l in $LAYOUTS; do
    P=${l%x*} T=${l#*x}
    OMP_NUM_THREADS=$T OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} \
        "${MPIRUN[@]}" -np "$P" "$XMPI" bench dist --threads "$T" "$@" | grep '^dist:'
done
