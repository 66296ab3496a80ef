/* run.h: what every training run shares (xlmr train's train.c and xlmr
 * pretrain's pretrain.c): the output folder's checkpoints (atomic, pruned,
 * listed for resume), model folders swapped into place, the JSONL log cut back
 * on resume, the progress line with ETA, and the error of a non-finite step.
 * Knows nothing of losses or data. */
#ifndef XLMR_RUN_H
#define XLMR_RUN_H

#include "util.h"
#include "stfolder.h"
#include "xlmr.h"

/* OUT/checkpoint-STEP + suffix (malloc'd). */
char *run_ckpt_path(const char *out, int step, const char *suffix);
/* Complete checkpoints in out, ascending (steps appended); removes leftover
 * *.tmp folders. A checkpoint-N folder without trainer_state.bin is not one. */
int run_list_checkpoints(const char *out, IntVec *steps);
/* Where a run in out starts: *last = its last complete checkpoint (-1: none),
 * the same on every rank of a data-parallel job (dist.h). Rank 0 looks first
 * and tidies out (leftover .tmp folders; each model folder out/names[i] a kill
 * left as NAME.old put back, run_restore_dir) before the others look.
 * -1 + xerr when out holds a checkpoint and resume is 0, or when the ranks see
 * different checkpoints (--out not a folder they share). */
int run_find_last(const char *out, const char *const *names, int n_names, int resume, int *last);
/* A run's start under data parallelism (dist.h): mkdir_p(out); rank 0 takes the
 * output folder's lock (util.h: dir_lock; one run per folder for the whole run;
 * a job's other ranks share rank 0's), and the other ranks are made quiet with
 * no log, since rank 0 alone prints and logs. */
int run_lock(const char *out, DirLock *lock, int *quiet, const char **log_file);
/* Replaces the folder dst by tmp (dst -> dst.old, tmp -> dst, dst.old removed). */
int run_swap_dir(const char *tmp, const char *dst);
/* Puts dst.old back when a kill left no dst (between run_swap_dir's renames). */
void run_restore_dir(const char *dst);
/* The model into OUT/name atomically (OUT/name.tmp, then swapped in). */
/* f: the sentence-transformers files written beside the model (stfolder.h). */
int run_save_model(const Xlmr *m, const char *out, const char *name, const char *spm, const StFolder *f);
/* The tokenizer file every folder the run saves gets a copy of, copied once
 * from src_dir into OUT/.sentencepiece.bpe.model: a run owns its source, so the
 * user may delete the start folder or any checkpoint (to free disk) while it
 * goes on. The path (malloc'd), or NULL + xerr. */
char *run_own_tokenizer(const char *src_dir, const char *out);
/* OUT/checkpoint-STEP, atomically: write(ctx, DIR) fills checkpoint-STEP.tmp,
 * which is then renamed into place; the last `keep` are kept. *saved: the
 * checkpoint's path (malloc'd; may be NULL). */
int run_checkpoint_save(const char *out, int step, int keep, int (*write)(void *ctx, const char *dir), void *ctx,
                        char **saved);
/* Keeps the last `keep` checkpoints of out. */
void run_checkpoint_prune(const char *out, int keep);
/* Drops the lines {"step": N, ...} with N > step from a JSONL log (a resumed run). */
int run_log_truncate(const char *path, int step);
/* -1 + xerr: step's loss (or gradient norm) is NaN/infinite; names out's last checkpoint. */
int run_nonfinite_error(const char *out, int step, double loss, double norm);

/* The progress line's clock: this call's start and steps, the last print. */
typedef struct {
    double t0, last_print, train_before; /* train_before: train_seconds of the run before this call */
    int first_step, tty;
} RunProgress;
/* "LABEL: step S/TOTAL loss .. lr .. tok/s elapsed .. ETA .." on stderr:
 * rewritten in place on a terminal (4 a second), one line every 5 s
 * otherwise, and always at the last step. end: now_seconds() at the step's end. */
void run_progress_line(RunProgress *pg, const char *label, int step, int total, double loss, double lr,
                       double tokens_per_s, double end);

#endif
