/* dist.h: the processes of a data-parallel job (MPI), the only module that
 * calls MPI. Built with -DXLMR_MPI (`make mpi`, mpicc) it is Open MPI's
 * MPI_COMM_WORLD; without it, the trivial job of one process (rank 0 of 1,
 * every collective a no-op or a copy), so the rest of the code has no #ifdef.
 *
 * Every collective must be called by every rank of the job, in the same order
 * (MPI's rule); a rank that dies, or that exits with an error, makes mpirun
 * stop the whole job (MPI_ERRORS_ARE_FATAL, the default).
 *
 * Solo mode (dist_solo): this process acts alone, as rank 0 of 1, until
 * dist_solo(0): `xlmr experiment` spreads whole runs over the ranks and each
 * run is the code of one process. */
#ifndef XLMR_DIST_H
#define XLMR_DIST_H

#include <stddef.h>
#include <stdint.h>

/* MPI_Init (threads: funneled, the OpenMP model). Call once at the start of main. */
void dist_init(int *argc, char ***argv);
/* MPI_Finalize; only on a normal exit (a rank that fails exits without it, and
 * mpirun then stops the others). */
void dist_finalize(void);
/* The rank (0..size-1) and the number of processes; 0 and 1 in solo mode. */
int dist_rank(void);
int dist_size(void);
/* The same for the whole job, solo or not. */
int dist_world_rank(void);
int dist_world_size(void);
/* 1: act alone (see above); 0: back to the job. Returns the setting before. */
int dist_solo(int on);

void dist_barrier(void);
/* x[0..n) = the sum over the ranks of x[0..n), the same on every rank (MPI_Allreduce;
 * train relies on that and checks it before each checkpoint). */
void dist_allreduce_sum_f(float *x, size_t n);
void dist_allreduce_sum_d(double *x, size_t n);
void dist_allreduce_max_i(int *x, size_t n); /* element-wise max */
/* The root's buf[0..bytes) on every rank. */
void dist_bcast(void *buf, size_t bytes, int root);
/* out = the ranks' mine[0..counts[r]) one after another, rank 0 first; counts
 * (size entries, the same on every rank) in elements. */
void dist_allgatherv_f(float *out, const float *mine, const int *counts);
void dist_allgatherv_i(int *out, const int *mine, const int *counts);
/* x (n_rows, C): row rows[i] (i < n) is computed by rank owner[i], which holds
 * it in x; afterwards every rank holds every one of these rows. rows and owner
 * are the same on every rank. */
void dist_share_rows(float *x, int C, const int *rows, const int *owner, int n);
/* 1 when every rank passed the same v (checks that the ranks agree). */
int dist_agree(uint64_t v);

#endif
