/* tests/test_util.c: the parts of util.h that guard against hostile
 * surroundings (issue 16): the output-folder lock between two processes,
 * size-limited reads of endless files, checked writes, the UTF-8 BOM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test.h"
#include "util.h"

static char tmpdir[64];

/* A child takes the lock and holds it until told to go; meanwhile the parent
 * is refused with the child's pid, and after the child exits (as a killed run
 * would) the lock is free again. Pipes order the steps: no sleeps. */
static void test_dir_lock(void) {
    int ready[2], go[2];
    if (pipe(ready) || pipe(go)) {
        CHECK(0, "pipe");
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        DirLock l;
        char c = dir_lock(tmpdir, &l) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1) _exit(2);
        if (read(go[0], &c, 1) != 1) _exit(2);
        _exit(0); /* no dir_unlock: the lock ends with the process */
    }
    char c = 0;
    CHECK(pid > 0 && read(ready[0], &c, 1) == 1 && c == 'y', "the child takes the lock");
    DirLock l;
    char want[64];
    snprintf(want, sizeof want, "(pid %ld)", (long)pid);
    CHECK(dir_lock(tmpdir, &l) == -1 && strstr(xerr_msg(), "another xlmr run holds this folder") &&
              strstr(xerr_msg(), want),
          "a second process is refused, naming the holder: %s", xerr_msg());
    CHECK(write(go[1], "x", 1) == 1, "release the child");
    int st;
    waitpid(pid, &st, 0);
    CHECK(dir_lock(tmpdir, &l) == 0, "free again once the holder is gone: %s", xerr_msg());
    dir_unlock(&l);
    CHECK(l.fd == -1, "dir_unlock");
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
}

static void test_read_limits(void) {
    char *data = NULL;
    size_t len = 0;
    CHECK(read_file_max("/dev/zero", (size_t)1 << 20, &data, &len) == -1 &&
              strstr(xerr_msg(), "/dev/zero: larger than 1 MB, the limit for this file"),
          "an endless file stops at the limit: %s", xerr_msg());
    char *p = path_join(tmpdir, "f.txt");
    CHECK(write_file_atomic(p, "abcdef", 6) == 0, "write");
    CHECK(read_file_max(p, 6, &data, &len) == 0 && len == 6 && !memcmp(data, "abcdef", 7), "exactly the limit is fine");
    free(data);
    CHECK(read_file_max(p, 5, &data, &len) == -1, "one byte over is refused");
    free(p);
}

static void test_checked_writes(void) {
    FILE *f = fopen("/dev/full", "w");
    if (!f) {
        printf("note: no /dev/full: checked-write test skipped\n");
        return;
    }
    fputs("lost", f);
    CHECK(stream_close_checked(f, "/dev/full") == -1 && strstr(xerr_msg(), "/dev/full: write error: No space left"),
          "a full disk is an error naming the file: %s", xerr_msg());
    char *p = path_join(tmpdir, "ok.txt");
    f = fopen(p, "w");
    fputs("kept", f);
    CHECK(stream_close_checked(f, p) == 0, "a good write passes");
    free(p);
}

static void test_bom(void) {
    CHECK(utf8_bom_len("\xEF\xBB\xBFx", 4) == 3, "BOM found");
    CHECK(utf8_bom_len("\xEF\xBB", 2) == 0 && utf8_bom_len("abc", 3) == 0, "no BOM");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/xlmr-test-util.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_dir_lock();
    test_read_limits();
    test_checked_writes();
    test_bom();
    remove_tree(tmpdir);
    return test_summary("util");
}
