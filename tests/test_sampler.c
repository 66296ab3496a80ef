/* tests/test_sampler.c: the training-data reader and the batch samplers, on a
 * fixture built from XQuAD-R (tests/fixtures/train/make_fixture.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sampler.h"
#include "test.h"

#define FIX "tests/fixtures/train/"

static char tmpdir[256];

static const char *write_tmp_n(const char *name, const char *content, size_t n) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    fwrite(content, 1, n, f);
    fclose(f);
    return path;
}
static const char *write_tmp(const char *name, const char *content) { return write_tmp_n(name, content, strlen(content)); }

/* Loading `content` must fail with a message containing want. */
static void bad_file_n(const char *name, const char *content, size_t n, const char *want) {
    const char *path = write_tmp_n(name, content, n);
    TrainData d;
    int rc = train_data_load(&d, &path, 1);
    CHECK(rc == -1 && strstr(xerr_msg(), want) && strstr(xerr_msg(), name), "%s: rc %d, message '%s', want '%s'",
          name, rc, rc ? xerr_msg() : "", want);
    if (rc == 0) train_data_free(&d);
}
static void bad_file(const char *name, const char *content, const char *want) {
    bad_file_n(name, content, strlen(content), want);
}

static int n_langs_of(const TrainData *d, int g) { return d->group_start[g + 1] - d->group_start[g]; }

/* Structural invariants of one batch; returns 0 when all hold. */
static int batch_ok(const TrainData *d, const SamplePair *p, int B, int kind, int *stamp, int batchno) {
    int lang0 = d->rows[p[0].qrow].lang;
    for (int i = 0; i < B; i++) {
        const TrainRow *q = &d->rows[p[i].qrow], *r = &d->rows[p[i].prow];
        if (q->group != r->group) return 1;                     /* a pair is one group */
        if (stamp[q->group] == batchno) return 2;               /* no group twice */
        stamp[q->group] = batchno;
        if (kind == BATCH_MONO && (q->lang != lang0 || p[i].qrow != p[i].prow)) return 3;
        if (kind == BATCH_CROSS && (q->lang == r->lang || n_langs_of(d, q->group) < 2)) return 4;
        if (kind == BATCH_MIXED && p[i].qrow != p[i].prow) return 5;
    }
    return 0;
}

static void test_load(TrainData *d) {
    const char *f = FIX "train.tsv";
    CHECK(train_data_load(d, &f, 1) == 0, "load: %s", xerr_msg());
    /* make_fixture.py: 80 groups, 11 languages, rows dropped by rule */
    int rows = 0;
    for (int k = 0; k < 80; k++)
        for (int l = 0; l < 11; l++) {
            if (k % 20 == 19 && l != 3) continue; /* en is the 4th code */
            if (k % 13 == l) continue;
            rows++;
        }
    CHECK(d->n_groups == 80 && d->n_langs == 11 && d->n_rows == rows, "groups %d langs %d rows %d (want 80 11 %d)",
          d->n_groups, d->n_langs, d->n_rows, rows);
    CHECK(!strcmp(d->langs[0], "ar") && !strcmp(d->langs[3], "en") && !strcmp(d->langs[10], "zh"), "sorted codes");
    int sorted = 1;
    for (int i = 1; i < d->n_rows; i++)
        if (d->rows[i].group < d->rows[i - 1].group ||
            (d->rows[i].group == d->rows[i - 1].group && d->rows[i].lang <= d->rows[i - 1].lang))
            sorted = 0;
    CHECK(sorted, "rows sorted by (group, lang), one per language");
    CHECK(d->n_hard == 0, "no hard negatives in train.tsv");
    int g = 0;
    CHECK(train_data_find(d, g, 3) >= 0 && !strcmp(d->langs[d->rows[train_data_find(d, g, 3)].lang], "en"), "find");
    CHECK(train_data_find(d, 0, 0) == -1, "group 0 lacks ar (k mod 13 == 0)");
    /* the first data row of the file, verbatim */
    int r = train_data_find(d, 0, 3);
    CHECK(r >= 0 && !strncmp(d->rows[r].query, "How many points did the Panthers defense surrender?", 40), "text: %s",
          r >= 0 ? d->rows[r].query : "");

    const char *files[2] = {FIX "hard.tsv", FIX "dev.tsv"};
    TrainData h;
    CHECK(train_data_load(&h, files, 2) == 0, "two files: %s", xerr_msg());
    CHECK(h.n_groups == 32 && h.n_langs == 3 && h.n_rows == 96 && h.n_hard == 48, "hard+dev: %d %d %d %d",
          h.n_groups, h.n_langs, h.n_rows, h.n_hard);
    CHECK(h.fingerprint != d->fingerprint, "fingerprints differ");
    train_data_free(&h);
}

static void test_bad_files(void) {
    bad_file("cols.tsv", "g1\ten\tq\tp\ng2\ten\tq\n", "cols.tsv:2: expected 4 or 5 tab-separated columns");
    bad_file("cols6.tsv", "g1\ten\tq\tp\th\tx\n", "found 6");
    bad_file("utf8.tsv", "# ok\ng1\ten\tq\xff\tp\n", "utf8.tsv:2: invalid UTF-8");
    bad_file("overlong.tsv", "g1\ten\tq\xc0\xaf\tp\n", "overlong.tsv:1: invalid UTF-8");
    bad_file("empty.tsv", "g1\ten\tq\tp\n\ng2\tde\t\tp\n", "empty.tsv:3: empty query");
    bad_file("blank.tsv", "g1\ten\tq\t   \n", "blank.tsv:1: empty passage");
    bad_file("hardempty.tsv", "g1\ten\tq\tp\t\n", "hardempty.tsv:1: empty hard negative");
    bad_file("lang.tsv", "g1\ten us\tq\tp\n", "lang.tsv:1: bad language code");
    bad_file("dup.tsv", "g1\ten\tq\tp\ng1\tde\tq\tp\ng1\ten\tq2\tp2\n", "dup.tsv:3: group 'g1' already has a row in language en");
    bad_file("none.tsv", "# only a comment\n\n", "none.tsv: no training rows");
    bad_file_n("nul.tsv", "g1\ten\tq\0x\tp\n", 11, "nul.tsv:1: NUL byte");
    const char *missing = "/nonexistent/x.tsv";
    TrainData d;
    CHECK(train_data_load(&d, &missing, 1) == -1 && strstr(xerr_msg(), "/nonexistent/x.tsv: cannot open"), "missing file: %s",
          xerr_msg());
    /* comments, blank lines and CRLF are fine */
    const char *ok = write_tmp("ok.tsv", "# c\r\n\r\ng1\ten\tq1\tp1\r\n\ng1\tde\tq2\tp2\n#x\tbad\ng2\ten\tq\tp\th");
    CHECK(train_data_load(&d, &ok, 1) == 0 && d.n_rows == 3 && d.n_hard == 1 && !strcmp(d.rows[0].passage, "p2") &&
              !strcmp(d.rows[1].passage, "p1") && !strcmp(d.rows[2].hard, "h"),
          "comments, blank lines, CRLF, no final newline: %s", xerr_msg());
    train_data_free(&d);
}

static void test_kinds(const TrainData *d) {
    const int B = 16, N = 400;
    SamplePair *p = malloc(B * sizeof *p);
    int *stamp = malloc(d->n_groups * sizeof(int));
    for (int sampling = 0; sampling < 4; sampling++) {
        Sampler s;
        CHECK(sampler_build(&s, d, sampling, 0.5, B, 7) == 0, "build %s: %s", sampling_name(sampling), xerr_msg());
        for (int g = 0; g < d->n_groups; g++) stamp[g] = -1;
        int bad = 0, kinds[3] = {0}, lang_seen[2][11] = {{0}};
        for (int b = 0; b < N; b++) {
            int kind = sampler_next(&s, p);
            kinds[kind]++;
            int want = sampling == SAMPLING_MONO ? BATCH_MONO : sampling == SAMPLING_CROSS ? BATCH_CROSS
                       : sampling == SAMPLING_MIXED ? BATCH_MIXED : -1;
            if (want >= 0 && kind != want) bad = 10;
            int e = batch_ok(d, p, B, kind, stamp, b);
            if (e && !bad) bad = e;
            for (int i = 0; i < B; i++) {
                lang_seen[0][d->rows[p[i].qrow].lang]++;
                lang_seen[1][d->rows[p[i].prow].lang]++;
            }
        }
        CHECK(!bad, "%s: batch invariant %d violated", sampling_name(sampling), bad);
        int all = 1;
        for (int l = 0; l < 11; l++) all &= lang_seen[0][l] > 0 && lang_seen[1][l] > 0;
        CHECK(all, "%s: every language appears on both sides", sampling_name(sampling));
        if (sampling == SAMPLING_HYBRID) CHECK(kinds[0] > 0 && kinds[1] > 0 && kinds[2] == 0, "hybrid: both kinds");
        sampler_free(&s);
    }
    free(p);
    free(stamp);
}

/* hybrid's share of mono batches is Binomial(N, alpha); mono's language is uniform. */
static void test_shares(const TrainData *d) {
    const int B = 8, N = 4000;
    SamplePair *p = malloc(B * sizeof *p);
    double alphas[3] = {0.5, 0.2, 0.9};
    for (int a = 0; a < 3; a++) {
        Sampler s;
        sampler_build(&s, d, SAMPLING_HYBRID, alphas[a], B, 100 + a);
        int mono = 0, per_lang[11] = {0};
        for (int b = 0; b < N; b++)
            if (sampler_next(&s, p) == BATCH_MONO) {
                mono++;
                per_lang[d->rows[p[0].qrow].lang]++;
            }
        double mean = N * alphas[a], sd = sqrt(N * alphas[a] * (1 - alphas[a]));
        CHECK_REPORT(fabs(mono - mean) < 5 * sd, "alpha %.1f: %d mono batches of %d (expected %.0f +- %.0f)", alphas[a],
                     mono, N, mean, 5 * sd);
        /* each language: Binomial(mono, 1/11) within 5 sd */
        int ok = 1;
        for (int l = 0; l < 11; l++) {
            double m = mono / 11.0, sdl = sqrt(mono * (1.0 / 11) * (10.0 / 11));
            if (fabs(per_lang[l] - m) > 5 * sdl) ok = 0;
        }
        CHECK(ok, "alpha %.1f: mono languages uniform", alphas[a]);
        sampler_free(&s);
    }
    /* alpha 0 and 1 give one kind only */
    Sampler s;
    sampler_build(&s, d, SAMPLING_HYBRID, 0.0, B, 1);
    int other = 0;
    for (int b = 0; b < 200; b++) other += sampler_next(&s, p) != BATCH_CROSS;
    sampler_free(&s);
    sampler_build(&s, d, SAMPLING_HYBRID, 1.0, B, 1);
    for (int b = 0; b < 200; b++) other += sampler_next(&s, p) != BATCH_MONO;
    sampler_free(&s);
    CHECK(other == 0, "alpha 0 / 1: cross only / mono only");
    free(p);
}

/* Without replacement: within one pass over a pool no group repeats, and after
 * k passes every group was drawn k times (up to the batch straddling a pass end). */
static void test_passes(const TrainData *d) {
    const int B = 10;
    SamplePair *p = malloc(B * sizeof *p);
    Sampler s;
    sampler_build(&s, d, SAMPLING_MIXED, 0.5, B, 3);
    int *count = calloc(d->n_groups, sizeof(int));
    int batches = 3 * d->n_groups / B; /* 80 groups, B 10: exactly 3 passes */
    for (int b = 0; b < batches; b++) {
        sampler_next(&s, p);
        for (int i = 0; i < B; i++) count[d->rows[p[i].qrow].group]++;
    }
    int ok = 1;
    for (int g = 0; g < d->n_groups; g++) ok &= count[g] == 3;
    CHECK(ok && s.mixed.passes == 2 && s.mixed.pos == s.mixed.n, "mixed: 3 passes see every group 3 times");
    sampler_free(&s);
    /* cross: single-language groups never appear; a pass covers the multilingual ones */
    sampler_build(&s, d, SAMPLING_CROSS, 0.5, 7, 3);
    memset(count, 0, d->n_groups * sizeof(int));
    int n_multi = 0;
    for (int g = 0; g < d->n_groups; g++) n_multi += n_langs_of(d, g) >= 2;
    CHECK(n_multi == 76 && s.cross.n == 76, "76 multilingual groups (%d)", n_multi);
    int straddle = 0;
    for (int b = 0; b < 10 * n_multi / 7; b++) {
        sampler_next(&s, p);
        for (int i = 0; i < 7; i++) count[d->rows[p[i].qrow].group]++;
    }
    for (int g = 0; g < d->n_groups; g++) {
        if (n_langs_of(d, g) < 2) straddle |= count[g] != 0;
        else straddle |= count[g] < 9 || count[g] > 11;
    }
    CHECK(!straddle, "cross: each multilingual group 10 +- 1 times in 10 passes, single-language never");
    sampler_free(&s);
    free(count);
    free(p);
}

static void test_repro_and_state(const TrainData *d) {
    const int B = 12;
    SamplePair *a = malloc(B * sizeof *a), *b = malloc(B * sizeof *b);
    Sampler s1, s2;
    sampler_build(&s1, d, SAMPLING_HYBRID, 0.5, B, 42);
    sampler_build(&s2, d, SAMPLING_HYBRID, 0.5, B, 42);
    int same = 1;
    for (int i = 0; i < 50; i++) {
        int k1 = sampler_next(&s1, a), k2 = sampler_next(&s2, b);
        same &= k1 == k2 && !memcmp(a, b, B * sizeof *a);
    }
    CHECK(same, "same seed, same batches");
    sampler_free(&s2);
    sampler_build(&s2, d, SAMPLING_HYBRID, 0.5, B, 43);
    int differ = 0;
    for (int i = 0; i < 5; i++) {
        sampler_next(&s2, b);
        sampler_next(&s1, a);
        differ |= memcmp(a, b, B * sizeof *a) != 0;
    }
    CHECK(differ, "another seed, other batches");
    sampler_free(&s2);

    /* save after 57 batches (a pool pass ends in between), restore in a fresh sampler */
    char path[512];
    snprintf(path, sizeof path, "%s/state.bin", tmpdir);
    FILE *f = fopen(path, "wb");
    CHECK(sampler_state_write(&s1, f) == 0, "state write");
    fclose(f);
    SamplePair want[40 * 12];
    int kinds[40];
    for (int i = 0; i < 40; i++) kinds[i] = sampler_next(&s1, want + i * B);
    sampler_build(&s2, d, SAMPLING_HYBRID, 0.5, B, 999);
    f = fopen(path, "rb");
    CHECK(sampler_state_read(&s2, f, path) == 0, "state read: %s", xerr_msg());
    fclose(f);
    same = 1;
    for (int i = 0; i < 40; i++) same &= sampler_next(&s2, a) == kinds[i] && !memcmp(a, want + i * B, B * sizeof *a);
    CHECK(same, "restored sampler continues identically");
    sampler_free(&s2);
    /* a state for other options is refused */
    sampler_build(&s2, d, SAMPLING_HYBRID, 0.5, B + 1, 42);
    f = fopen(path, "rb");
    CHECK(sampler_state_read(&s2, f, path) == -1 && strstr(xerr_msg(), "--batch 12"), "other batch refused: %s",
          xerr_msg());
    fclose(f);
    sampler_free(&s2);
    /* truncated state */
    f = fopen(path, "r+b");
    CHECK(ftruncate(fileno(f), 100) == 0, "truncate");
    fclose(f);
    sampler_build(&s2, d, SAMPLING_HYBRID, 0.5, B, 42);
    f = fopen(path, "rb");
    CHECK(sampler_state_read(&s2, f, path) == -1 && strstr(xerr_msg(), "truncated"), "truncated: %s", xerr_msg());
    fclose(f);
    sampler_free(&s2);
    sampler_free(&s1);
    free(a);
    free(b);
}

static void test_too_small(const TrainData *d) {
    Sampler s;
    /* the fewest groups of a language: 80 - 4 single-English - 6 dropped = 70ish */
    CHECK(sampler_build(&s, d, SAMPLING_MONO, 0.5, 75, 1) == -1 && strstr(xerr_msg(), "language ar has"),
          "mono B too big names the language: %s", xerr_msg());
    CHECK(sampler_build(&s, d, SAMPLING_CROSS, 0.5, 77, 1) == -1 && strstr(xerr_msg(), "76 groups have two or more"),
          "cross B too big: %s", xerr_msg());
    CHECK(sampler_build(&s, d, SAMPLING_MIXED, 0.5, 80, 1) == 0, "mixed B = all groups");
    SamplePair p[80];
    int seen[80] = {0}, ok = 1;
    for (int b = 0; b < 3; b++) {
        sampler_next(&s, p);
        for (int i = 0; i < 80; i++) ok &= seen[d->rows[p[i].qrow].group]++ == b;
    }
    CHECK(ok, "B = pool size: every batch is a permutation of the groups");
    sampler_free(&s);
    CHECK(sampler_build(&s, d, SAMPLING_MIXED, 0.5, 81, 1) == -1, "mixed B > groups");
    CHECK(sampler_build(&s, d, SAMPLING_HYBRID, 1.5, 8, 1) == -1 && strstr(xerr_msg(), "alpha"), "alpha range");
    CHECK(sampling_parse("hybrid") == SAMPLING_HYBRID && sampling_parse("x-y") == -1, "sampling_parse");
}

/* Several datasets: the fixture's first 50 groups as file A, the others as B. */
static void test_multi(void) {
    char *text;
    size_t len;
    CHECK(read_file(FIX "train.tsv", &text, &len) == 0, "read fixture");
    StrBuf a = {0}, b = {0}, seen = {0};
    int groups = 0;
    for (char *p = text, *nl; p < text + len; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = text + len;
        if (*p == '#' || nl == p) continue;
        size_t gl = strcspn(p, "\t");
        char key[80];
        snprintf(key, sizeof key, "|%.*s|", (int)gl, p);
        if (!seen.data || !strstr(seen.data, key)) {
            sb_puts(&seen, key);
            groups++;
        }
        sb_append(groups <= 50 ? &a : &b, p, (size_t)(nl - p) + 1);
    }
    free(text);
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s", write_tmp("multi_a.tsv", a.data));
    snprintf(pb, sizeof pb, "%s", write_tmp("multi_b.tsv", b.data));
    sb_free(&a);
    sb_free(&b);
    sb_free(&seen);
    const char *files[2] = {pa, pb};
    TrainData d;
    CHECK(train_data_load(&d, files, 2) == 0 && d.n_files == 2, "two files load: %s", xerr_msg());
    int in_a = 0;
    for (int g = 0; g < d.n_groups; g++) in_a += d.group_file[g] == 0;
    CHECK(in_a == 50 && d.n_groups == 80, "group_file: 50 of %d groups in A (%d)", d.n_groups, in_a);
    const int B = 6;
    SamplePair *p1 = malloc(B * sizeof *p1), *p2 = malloc(B * sizeof *p2);
    Sampler s1, s2;
    /* merged over two files = sampler_build */
    CHECK(sampler_build_multi(&s1, &d, files, MULTI_MERGED, SAMPLING_HYBRID, 0.5, B, 5) == 0 && s1.n_sets == 0, "merged");
    sampler_build(&s2, &d, SAMPLING_HYBRID, 0.5, B, 5);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= sampler_next(&s1, p1) == sampler_next(&s2, p2) && !memcmp(p1, p2, B * sizeof *p1);
    CHECK(same, "merged draws what sampler_build draws");
    sampler_free(&s1);
    sampler_free(&s2);
    /* proportional: every batch from one file, about 50/80 of them from A */
    CHECK(sampler_build_multi(&s1, &d, files, MULTI_PROPORTIONAL, SAMPLING_HYBRID, 0.5, B, 5) == 0, "proportional");
    int from_a = 0, wrong = 0;
    for (int i = 0; i < 800; i++) {
        sampler_next(&s1, p1);
        from_a += s1.dataset == 0;
        for (int k = 0; k < B; k++) wrong += d.group_file[d.rows[p1[k].qrow].group] != s1.dataset;
    }
    CHECK(wrong == 0, "each batch's groups from the file it names (%d wrong)", wrong);
    CHECK(from_a > 440 && from_a < 560, "A serves %d of 800 batches (expected 500)", from_a);
    /* the state continues exactly; another mode or a merged sampler refuses it */
    char path[512];
    snprintf(path, sizeof path, "%s/multi_state.bin", tmpdir);
    FILE *f = fopen(path, "wb");
    CHECK(sampler_state_write(&s1, f) == 0, "multi state write");
    fclose(f);
    SamplePair want[30 * 6];
    int kinds[30], sets[30];
    for (int i = 0; i < 30; i++) {
        kinds[i] = sampler_next(&s1, want + i * B);
        sets[i] = s1.dataset;
    }
    sampler_build_multi(&s2, &d, files, MULTI_PROPORTIONAL, SAMPLING_HYBRID, 0.5, B, 77);
    f = fopen(path, "rb");
    CHECK(sampler_state_read(&s2, f, path) == 0, "multi state read: %s", xerr_msg());
    fclose(f);
    same = 1;
    for (int i = 0; i < 30; i++)
        same &= sampler_next(&s2, p2) == kinds[i] && s2.dataset == sets[i] && !memcmp(p2, want + i * B, B * sizeof *p2);
    CHECK(same, "restored multi sampler continues identically");
    sampler_free(&s2);
    sampler_build_multi(&s2, &d, files, MULTI_ROUND_ROBIN, SAMPLING_HYBRID, 0.5, B, 5);
    f = fopen(path, "rb");
    CHECK(sampler_state_read(&s2, f, path) == -1 && strstr(xerr_msg(), "--multi-dataset proportional"),
          "round-robin refuses a proportional state: %s", xerr_msg());
    fclose(f);
    for (int i = 0; i < 4; i++) {
        sampler_next(&s2, p2);
        CHECK(s2.dataset == i % 2, "round-robin batch %d from file %d", i, s2.dataset);
    }
    sampler_free(&s2);
    sampler_build(&s2, &d, SAMPLING_HYBRID, 0.5, B, 5);
    f = fopen(path, "rb");
    CHECK(sampler_state_read(&s2, f, path) == -1 && strstr(xerr_msg(), "several datasets"), "merged refuses it: %s",
          xerr_msg());
    fclose(f);
    sampler_free(&s2);
    sampler_free(&s1);
    free(p1);
    free(p2);
    train_data_free(&d);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/xlmr-test-sampler.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    TrainData d;
    test_load(&d);
    test_bad_files();
    test_kinds(&d);
    test_shares(&d);
    test_passes(&d);
    test_repro_and_state(&d);
    test_too_small(&d);
    test_multi();
    train_data_free(&d);
    remove_tree(tmpdir);
    return test_summary("sampler");
}
