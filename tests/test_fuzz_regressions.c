/* tests/test_fuzz_regressions.c: replays, without libFuzzer, every input in
 * fuzz/regressions/<target>/ (crashes the fuzzers found, kept once fixed) and
 * fuzz/seeds/<target>/ through the same entry points as the fuzz targets
 * (fuzz/fuzz_<target>.c, included here with FUZZ_REPLAY), so each build the
 * suite runs — default, sanitizer, scalar, aarch64 — checks them.
 * An input passes when its target returns without crashing or aborting (the
 * targets abort() when an invariant of the parser's output is broken); each
 * input runs in a child process, so one crash does not hide the others.
 * FUZZ_DIR overrides the fuzz/ folder (default: fuzz, the suite runs in the
 * repository root). */
#define FUZZ_REPLAY 1
#include <dirent.h>
#include <sys/wait.h>

#include "fuzz/fuzz_json.c"
#include "fuzz/fuzz_multi_state.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_sampler_state.c"
#include "fuzz/fuzz_spm_model.c"
#include "fuzz/fuzz_squad.c"
#include "fuzz/fuzz_tokenize.c"
#include "fuzz/fuzz_tsv.c"
#include "tests/test.h"

static const struct {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
} targets[] = {
    {"safetensors", fuzz_one_safetensors}, {"json", fuzz_one_json}, {"spm_model", fuzz_one_spm_model},
    {"tokenize", fuzz_one_tokenize},       {"tsv", fuzz_one_tsv},   {"squad", fuzz_one_squad},
    {"sampler_state", fuzz_one_sampler_state},
    {"multi_state", fuzz_one_multi_state},
};

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays every regular file in dir through fn; returns the number replayed. */
static int replay_dir(const char *dir, const char *target, int (*fn)(const uint8_t *, size_t)) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md")) continue;
        if (n == cap) names = xrealloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_name);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = path_join(dir, names[i]);
        char *data;
        size_t len;
        if (is_dir(path)) {
            free(path);
            continue;
        }
        if (read_file(path, &data, &len) != 0) {
            CHECK(0, "cannot read %s: %s", path, xerr_msg());
        } else {
            /* each input in a child process: a crash fails that input, and the others still run */
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid == 0) _exit(fn((const uint8_t *)data, len) == 0 ? 0 : 3);
            int st = 0;
            if (pid < 0) { /* no fork: run it here */
                st = fn((const uint8_t *)data, len) == 0 ? 0 : 3 << 8;
            } else if (waitpid(pid, &st, 0) != pid) {
                st = -1;
            }
            if (WIFSIGNALED(st))
                CHECK(0, "%s (target %s): killed by signal %d", path, target, WTERMSIG(st));
            else
                CHECK(st == 0, "%s (target %s): exit status %d", path, target, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            free(data);
            count++;
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return count;
}

int main(void) {
    const char *fuzz = getenv("FUZZ_DIR");
    if (!fuzz || !*fuzz) fuzz = "fuzz";
    CHECK(is_dir(fuzz), "no %s folder (run from the repository root or set FUZZ_DIR)", fuzz);
    (void)fuzz_scratch_dir(); /* made (and removed at exit) by this process; the children share it */
    (void)fuzz_tok_model_();  /* loaded once, before the children fork */
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        char sub[64];
        snprintf(sub, sizeof sub, "regressions/%s", targets[t].name);
        char *reg = path_join(fuzz, sub);
        snprintf(sub, sizeof sub, "seeds/%s", targets[t].name);
        char *seeds = path_join(fuzz, sub);
        int nr = replay_dir(reg, targets[t].name, targets[t].fn);
        int ns = replay_dir(seeds, targets[t].name, targets[t].fn);
        CHECK_REPORT(ns > 0, "%-12s %d regression inputs, %d seeds replayed", targets[t].name, nr, ns);
        free(reg);
        free(seeds);
    }
    return test_summary("fuzz_regressions");
}
