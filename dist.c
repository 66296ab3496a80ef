/* dist.c: the processes of a data-parallel job (see dist.h). The only file
 * with MPI calls, and the only one with #ifdef XLMR_MPI: without it every
 * function is that of a job of one process. */
#include "dist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#ifdef XLMR_MPI
#include <mpi.h>
#endif

static int world_rank = 0, world_size = 1, solo = 0;

/* One process does everything itself: no MPI build, a job of one, or solo mode. */
static int alone(void) { return solo || world_size == 1; }

int dist_rank(void) { return solo ? 0 : world_rank; }
int dist_size(void) { return solo ? 1 : world_size; }
int dist_world_rank(void) { return world_rank; }
int dist_world_size(void) { return world_size; }
int dist_solo(int on) {
    int was = solo;
    solo = on;
    return was;
}

/* The rows of rank r, packed in the order of rows[] (pack: from x; unpack: into x). */
static size_t pack_rows(float *x, float *buf, int C, const int *rows, const int *owner, int n, int r, int unpack) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (owner[i] != r) continue;
        float *row = x + (size_t)rows[i] * C, *b = buf + k * C;
        if (unpack) memcpy(row, b, (size_t)C * sizeof(float));
        else memcpy(b, row, (size_t)C * sizeof(float));
        k++;
    }
    return k;
}

#ifdef XLMR_MPI

/* MPI counts are int: long buffers go in pieces. */
#define PIECE ((size_t)1 << 27)

void dist_init(int *argc, char ***argv) {
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
}

void dist_finalize(void) { MPI_Finalize(); }

/* Polled with a 2 ms sleep: MPI_Barrier spins, and a rank that waits long
 * (experiment: the others' last runs) would take a core from those still working. */
void dist_barrier(void) {
    if (alone()) return;
    MPI_Request req;
    int done = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    for (MPI_Test(&req, &done, MPI_STATUS_IGNORE); !done; MPI_Test(&req, &done, MPI_STATUS_IGNORE)) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

static void allreduce(void *x, size_t n, size_t elem, MPI_Datatype t, MPI_Op op) {
    if (alone()) return;
    for (size_t i = 0; i < n; i += PIECE) {
        size_t k = n - i < PIECE ? n - i : PIECE;
        MPI_Allreduce(MPI_IN_PLACE, (char *)x + i * elem, (int)k, t, op, MPI_COMM_WORLD);
    }
}

void dist_allreduce_sum_f(float *x, size_t n) { allreduce(x, n, sizeof *x, MPI_FLOAT, MPI_SUM); }
void dist_allreduce_sum_d(double *x, size_t n) { allreduce(x, n, sizeof *x, MPI_DOUBLE, MPI_SUM); }
void dist_allreduce_max_i(int *x, size_t n) { allreduce(x, n, sizeof *x, MPI_INT, MPI_MAX); }

void dist_bcast(void *buf, size_t bytes, int root) {
    if (alone()) return;
    for (size_t i = 0; i < bytes; i += PIECE)
        MPI_Bcast((char *)buf + i, (int)(bytes - i < PIECE ? bytes - i : PIECE), MPI_BYTE, root, MPI_COMM_WORLD);
}

static void allgatherv(void *out, const void *mine, const int *counts, size_t elem, MPI_Datatype t) {
    if (alone()) {
        memmove(out, mine, (size_t)counts[0] * elem);
        return;
    }
    int *displs = xmalloc((size_t)world_size * sizeof(int));
    for (int r = 0, d = 0; r < world_size; r++) {
        displs[r] = d;
        d += counts[r];
    }
    MPI_Allgatherv(mine, counts[world_rank], t, out, counts, displs, t, MPI_COMM_WORLD);
    free(displs);
}

void dist_allgatherv_f(float *out, const float *mine, const int *counts) {
    allgatherv(out, mine, counts, sizeof(float), MPI_FLOAT);
}
void dist_allgatherv_i(int *out, const int *mine, const int *counts) {
    allgatherv(out, mine, counts, sizeof(int), MPI_INT);
}

int dist_agree(uint64_t v) {
    if (alone()) return 1;
    uint64_t lo = v, hi = v;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

#else /* one process */

void dist_init(int *argc, char ***argv) {}
void dist_finalize(void) {}
void dist_barrier(void) {}
void dist_allreduce_sum_f(float *x, size_t n) {}
void dist_allreduce_sum_d(double *x, size_t n) {}
void dist_allreduce_max_i(int *x, size_t n) {}
void dist_bcast(void *buf, size_t bytes, int root) {}
void dist_allgatherv_f(float *out, const float *mine, const int *counts) {
    memmove(out, mine, (size_t)counts[0] * sizeof(float));
}
void dist_allgatherv_i(int *out, const int *mine, const int *counts) {
    memmove(out, mine, (size_t)counts[0] * sizeof(int));
}
int dist_agree(uint64_t v) { return 1; }

#endif

void dist_share_rows(float *x, int C, const int *rows, const int *owner, int n) {
    if (alone() || n == 0) return;
    const int P = dist_size();
    int *counts = xcalloc((size_t)P, sizeof(int));
    for (int i = 0; i < n; i++) counts[owner[i]] += C;
    float *mine = xmalloc((size_t)counts[dist_rank()] * sizeof(float));
    float *all = xmalloc((size_t)n * C * sizeof(float));
    pack_rows(x, mine, C, rows, owner, n, dist_rank(), 0);
    dist_allgatherv_f(all, mine, counts);
    for (int r = 0, off = 0; r < P; off += counts[r++]) pack_rows(x, all + off, C, rows, owner, n, r, 1);
    free(counts);
    free(mine);
    free(all);
}
