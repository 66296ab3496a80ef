/* run.c: see run.h. Moved out of train.c so that xlmr pretrain shares them. */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "tokenizer.h"

char *run_ckpt_path(const char *out, int step, const char *suffix) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s%scheckpoint-%d%s", out, out[strlen(out) - 1] == '/' ? "" : "/", step, suffix);
    return sb.data;
}

/* Step of a "checkpoint-N" name, or -1. */
static int ckpt_step(const char *name) {
    if (strncmp(name, "checkpoint-", 11) != 0 || !name[11]) return -1;
    long v = 0;
    for (const char *s = name + 11; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000) return -1;
        v = v * 10 + (*s - '0');
    }
    return (int)v;
}

/* Complete checkpoints in out, ascending; removes leftover *.tmp folders (a run
 * killed while saving or pruning). A checkpoint-N folder is whole by
 * construction (renamed into place only once written); one without
 * trainer_state.bin is not a checkpoint of this trainer and is ignored. */
int run_list_checkpoints(const char *out, IntVec *steps) {
    DIR *dir = opendir(out);
    if (!dir) return 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t L = strlen(e->d_name);
        if (L > 4 && !strcmp(e->d_name + L - 4, ".tmp") && !strncmp(e->d_name, "checkpoint-", 11)) {
            char *p = path_join(out, e->d_name);
            remove_tree(p);
            free(p);
            continue;
        }
        int s = ckpt_step(e->d_name);
        if (s < 0) continue;
        char *p = path_join(out, e->d_name), *st = path_join(p, "trainer_state.bin");
        if (is_dir(p) && path_exists(st)) iv_push(steps, s);
        free(p);
        free(st);
    }
    closedir(dir);
    for (size_t a = 1; a < steps->n; a++)
        for (size_t b = a; b > 0 && steps->data[b] < steps->data[b - 1]; b--) {
            int t = steps->data[b];
            steps->data[b] = steps->data[b - 1];
            steps->data[b - 1] = t;
        }
    return 0;
}

/* Rank 0's part of run_find_last: the tidying, the listing, the resume check. */
static int find_last(const char *out, const char *const *names, int n_names, int resume, int *last) {
    for (int i = 0; i < n_names; i++) {
        char *p = path_join(out, names[i]);
        run_restore_dir(p);
        free(p);
    }
    IntVec ck = {0};
    run_list_checkpoints(out, &ck);
    *last = ck.n ? ck.data[ck.n - 1] : -1;
    iv_free(&ck);
    if (*last >= 0 && !resume)
        return xerr("%s: holds checkpoint-%d already: pass --resume to continue that run, or choose another --out",
                    out, *last);
    return 0;
}

int run_find_last(const char *out, const char *const *names, int n_names, int resume, int *last) {
    if (dist_rank() != 0) dist_barrier();
    int rc = find_last(out, names, n_names, resume, last);
    if (dist_rank() == 0) dist_barrier();
    if (rc) return -1;
    if (!dist_agree((uint64_t)(*last + 1))) {
        char seen[32] = "none";
        if (*last >= 0) snprintf(seen, sizeof seen, "checkpoint-%d", *last);
        return xerr("%s: the ranks see different checkpoints (rank %d: %s): --out must be a folder all ranks share",
                    out, dist_rank(), seen);
    }
    return 0;
}

int run_lock(const char *out, DirLock *lock, int *quiet, const char **log_file) {
    if (dist_rank() != 0) {
        *quiet = 1;
        *log_file = NULL;
    }
    return mkdir_p(out) || (dist_rank() == 0 && dir_lock(out, lock)) ? -1 : 0;
}

/* Replaces the folder dst by tmp: dst -> dst.old, tmp -> dst, remove dst.old.
 * Two renames, because a folder cannot be renamed over a non-empty one; a kill
 * in between leaves dst.old, which run_restore_dir() puts back. */
int run_swap_dir(const char *tmp, const char *dst) {
    StrBuf old = {0};
    sb_printf(&old, "%s.old", dst);
    int rc = 0;
    remove_tree(old.data);
    if (path_exists(dst) && rename(dst, old.data) != 0) rc = xerr("%s: cannot rename: %s", dst, strerror(errno));
    if (rc == 0 && rename(tmp, dst) != 0) rc = xerr("%s: cannot rename into place: %s", dst, strerror(errno));
    if (rc == 0) remove_tree(old.data);
    sb_free(&old);
    return rc;
}

void run_restore_dir(const char *dst) {
    StrBuf old = {0};
    sb_printf(&old, "%s.old", dst);
    if (!path_exists(dst) && is_dir(old.data)) rename(old.data, dst);
    sb_free(&old);
}

int run_save_model(const Xlmr *m, const char *out, const char *name, const char *spm, const StFolder *f) {
    char *dst = path_join(out, name);
    StrBuf tmp = {0};
    sb_printf(&tmp, "%s.tmp", dst);
    remove_tree(tmp.data);
    int rc = mkdir_p(tmp.data);
    if (rc == 0) rc = stfolder_save_model(m, tmp.data, spm, f);
    if (rc == 0) rc = run_swap_dir(tmp.data, dst);
    if (rc == 0) fsync_dir(out);
    else remove_tree(tmp.data);
    free(dst);
    sb_free(&tmp);
    return rc;
}

/* Keeps the last `keep` checkpoints. Each is renamed to .tmp before its
 * removal: a kill during the removal leaves a .tmp folder, which the next
 * start removes (list_checkpoints), never a half-deleted checkpoint. */
void run_checkpoint_prune(const char *out, int keep) {
    IntVec steps = {0};
    run_list_checkpoints(out, &steps);
    for (size_t i = 0; i + (size_t)keep < steps.n; i++) {
        char *p = run_ckpt_path(out, steps.data[i], ""), *t = run_ckpt_path(out, steps.data[i], ".tmp");
        remove_tree(t);
        if (rename(p, t) == 0) remove_tree(t);
        free(p);
        free(t);
    }
    iv_free(&steps);
}

/* OUT/checkpoint-STEP, atomically: written whole as checkpoint-STEP.tmp, then
 * renamed into place (a rename is atomic) and the folder's entry synced, so
 * a kill at any moment leaves either the whole checkpoint or none. */
int run_checkpoint_save(const char *out, int step, int keep, int (*write)(void *ctx, const char *dir), void *ctx,
                        char **saved) {
    char *dst = run_ckpt_path(out, step, ""), *tmp = run_ckpt_path(out, step, ".tmp");
    remove_tree(tmp);
    int rc = write(ctx, tmp);
    if (rc == 0) {
        remove_tree(dst); /* a checkpoint of the same step from an interrupted run */
        if (rename(tmp, dst) != 0) rc = xerr("%s: cannot rename into place: %s", dst, strerror(errno));
        else fsync_dir(out);
    }
    if (rc != 0) remove_tree(tmp);
    if (rc == 0 && saved) *saved = dst;
    else free(dst);
    free(tmp);
    if (rc) return -1;
    run_checkpoint_prune(out, keep);
    return 0;
}

/* On resume: drops the log lines of steps after the checkpoint (a killed run
 * got further than its last checkpoint), so that the log reads as one run. */
int run_log_truncate(const char *path, int step) {
    char *data;
    size_t len;
    if (!path_exists(path)) return 0;
    if (read_file(path, &data, &len)) return -1;
    StrBuf sb = {0};
    sb_puts(&sb, "");
    for (char *line = data; line < data + len;) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        char *next = nl ? nl + 1 : data + len;
        int s;
        if (nl && sscanf(line, "{\"step\": %d", &s) == 1 && s <= step) sb_append(&sb, line, (size_t)(next - line));
        line = next;
    }
    int rc = write_file_atomic(path, sb.data, sb.len);
    sb_free(&sb);
    free(data);
    return rc;
}

/* The error of a step whose loss or gradient is not finite. Nothing of the step
 * was applied: the model and the checkpoints on disk stay as they were. */
int run_nonfinite_error(const char *out, int step, double loss, double norm) {
    IntVec ck = {0};
    run_list_checkpoints(out, &ck);
    char *p = ck.n ? run_ckpt_path(out, ck.data[ck.n - 1], "") : xstrdup("none");
    xerr("step %d: the %s is %s; training stopped (last complete checkpoint: %s)", step,
         isfinite(loss) ? "gradient norm" : "loss", isnan(isfinite(loss) ? norm : loss) ? "NaN" : "infinite", p);
    free(p);
    iv_free(&ck);
    return -1;
}

/* The progress line on stderr: rewritten in place on a terminal (4 a second),
 * one line every 5 s otherwise, and always at the last step. */
void run_progress_line(RunProgress *pg, const char *label, int s, int total, double loss, double lr,
                       double tokens_per_s, double end) {
    if (!(s == total || end - pg->last_print > (pg->tty ? 0.25 : 5.0))) return;
    char el[32], eta[32];
    double rate = (s - pg->first_step) / (end - pg->t0 + 1e-9);
    fmt_duration(el, sizeof el, end - pg->t0);
    fmt_duration(eta, sizeof eta, (total - s) / (rate > 0 ? rate : 1e-9));
    fprintf(stderr, "%s%s: step %d/%d loss %.4f lr %.3g %.0f tok/s elapsed %s ETA %s%s", pg->tty ? "\r" : "", label, s,
            total, loss, lr, tokens_per_s, el, eta, pg->tty ? "   " : "\n");
    if (pg->tty && s == total) fputc('\n', stderr);
    pg->last_print = end;
}

char *run_own_tokenizer(const char *src_dir, const char *out) {
    char *src = tokenizer_model_path(src_dir), *own = path_join(out, ".sentencepiece.bpe.model");
    int rc = copy_file(src, own);
    free(src);
    if (rc == 0) return own;
    free(own);
    return NULL;
}
