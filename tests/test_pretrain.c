/* tests/test_pretrain.c: the pieces of pretraining (pretrain.h): masking
 * statistics (the share chosen, 80/10/10, specials never chosen, labels, a
 * pure function of the key), the language probabilities (n_l/N)^alpha and
 * their sampling, and the corpus: blocks within documents, the held-out rule,
 * and one-line errors for bad text files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pretrain.h"
#include "test.h"
#include "tokenizer.h"
#include "util.h"

static void check_masking(void) {
    enum { N = 200000, V = 1000, MASK = V - 1 };
    int *ids = xmalloc(N * sizeof(int)), *orig = xmalloc(N * sizeof(int)), *pos = xmalloc(N * sizeof(int));
    int *lab = xmalloc(N * sizeof(int));
    Rng r;
    rng_seed(&r, 3);
    int specials = 0;
    for (int i = 0; i < N; i++) {
        /* one in ten a special (<s> <pad> </s> <unk> or <mask>) */
        int sp = rng_below(&r, 10) == 0;
        int k = (int)rng_below(&r, 5);
        orig[i] = ids[i] = sp ? (k < 4 ? k : MASK) : 4 + (int)rng_below(&r, V - 5);
        specials += sp;
    }
    int M = pretrain_mask(ids, N, pos, lab, 0.15, MASK, V, 42);
    int masked = 0, random = 0, kept = 0, bad_special = 0, bad_label = 0, outside = 0;
    for (int i = 0; i < M; i++) {
        int p = pos[i];
        bad_special += orig[p] <= 3 || orig[p] == MASK;
        bad_label += lab[i] != orig[p];
        if (ids[p] == MASK) masked++;
        else if (ids[p] == orig[p]) kept++;
        else random++;
    }
    for (int i = 0, j = 0; i < N; i++) { /* every other position untouched */
        if (j < M && pos[j] == i) {
            j++;
            continue;
        }
        outside += ids[i] != orig[i];
    }
    double share = (double)M / (N - specials);
    CHECK_REPORT(fabs(share - 0.15) < 0.004, "masking: %.4f of the %d non-special tokens chosen (0.15)", share,
                 N - specials);
    CHECK_REPORT(fabs(masked / (double)M - 0.8) < 0.01 && fabs(random / (double)M - 0.1) < 0.008 &&
                     fabs(kept / (double)M - 0.1) < 0.008,
                 "masking: %.3f <mask>, %.3f random, %.3f kept (0.8 / 0.1 / 0.1)", masked / (double)M,
                 random / (double)M, kept / (double)M);
    CHECK(bad_special == 0, "specials never chosen (%d were)", bad_special);
    CHECK(bad_label == 0 && outside == 0, "labels are the original ids; nothing else changes (%d, %d)", bad_label,
          outside);
    int sorted = 1;
    for (int i = 1; i < M; i++) sorted &= pos[i] > pos[i - 1];
    CHECK(sorted, "positions in order");
    /* a pure function of the key */
    int *again = xmalloc(N * sizeof(int)), *pos2 = xmalloc(N * sizeof(int)), *lab2 = xmalloc(N * sizeof(int));
    memcpy(again, orig, N * sizeof(int));
    int M2 = pretrain_mask(again, N, pos2, lab2, 0.15, MASK, V, 42);
    CHECK(M2 == M && !memcmp(again, ids, N * sizeof(int)) && !memcmp(pos2, pos, (size_t)M * sizeof(int)),
          "the same key, the same masks");
    memcpy(again, orig, N * sizeof(int));
    pretrain_mask(again, N, pos2, lab2, 0.15, MASK, V, 43);
    CHECK(memcmp(again, ids, N * sizeof(int)) != 0, "another key, other masks");
    /* a prefix of a sequence is masked as the start of the whole one */
    memcpy(again, orig, N * sizeof(int));
    int Mp = pretrain_mask(again, 1000, pos2, lab2, 0.15, MASK, V, 42), Mw = 0;
    while (Mw < M && pos[Mw] < 1000) Mw++;
    CHECK(Mp == Mw && !memcmp(again, ids, 1000 * sizeof(int)), "a position's fate depends on the key and its index");
    free(ids); free(orig); free(pos); free(lab); free(again); free(pos2); free(lab2);
}

static void check_lang_probs(void) {
    PretrainLang langs[3];
    memset(langs, 0, sizeof langs);
    langs[0].train_tokens = 9000;
    langs[1].train_tokens = 900;
    langs[2].train_tokens = 100;
    PretrainCorpus c = {.langs = langs, .n_langs = 3};
    double p[3], q[3], w[3], z = 0;
    pretrain_lang_probs(&c, 0.3, p);
    for (int i = 0; i < 3; i++) z += w[i] = pow(langs[i].train_tokens / 10000.0, 0.3);
    double err = 0;
    for (int i = 0; i < 3; i++) err = fmax(err, fabs(p[i] - w[i] / z));
    CHECK_REPORT(err < 1e-12, "p(l) = (n_l/N)^0.3 normalised: %.4f %.4f %.4f (the smallest up from 0.01)", p[0], p[1],
                 p[2]);
    pretrain_lang_probs(&c, 1.0, q);
    CHECK(fabs(q[0] - 0.9) < 1e-12 && fabs(q[2] - 0.01) < 1e-12, "alpha 1: proportional to the tokens");
    pretrain_lang_probs(&c, 0.0, q);
    CHECK(fabs(q[0] - 1 / 3.0) < 1e-12 && fabs(q[2] - 1 / 3.0) < 1e-12, "alpha 0: uniform");
    /* drawn as often as p says */
    Rng r;
    rng_seed(&r, 9);
    int count[3] = {0, 0, 0}, n = 300000;
    for (int i = 0; i < n; i++) count[pretrain_pick_lang(p, 3, rng_uniform(&r))]++;
    double worst = 0;
    for (int i = 0; i < 3; i++) worst = fmax(worst, fabs(count[i] / (double)n - p[i]));
    CHECK_REPORT(worst < 0.004, "sampled languages follow p(l): worst |freq - p| %.4f over %d draws", worst, n);
    CHECK(pretrain_pick_lang(p, 3, 0.0) == 0 && pretrain_pick_lang(p, 3, 0.999999) == 2, "pick_lang ends");
}

static char *write_tmp(const char *name, const char *text, size_t len) {
    char *p = path_join(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
    FILE *f = fopen(p, "wb");
    fwrite(text, 1, len, f);
    fclose(f);
    return p;
}

static void check_corpus(void) {
    const char *spm = path_exists("tests/ref/mlm_fill/sentencepiece.bpe.model") ? "tests/ref/mlm_fill/sentencepiece.bpe.model"
                                                                                : "../tests/ref/mlm_fill/sentencepiece.bpe.model";
    Tokenizer *t;
    if (tokenizer_load(&t, spm) != 0) {
        CHECK(0, "tokenizer: %s", xerr_msg());
        return;
    }
    /* two documents: the first long (several blocks), the second short */
    StrBuf doc = {0};
    for (int i = 0; i < 40; i++) sb_puts(&doc, "the model of the world and the text\n");
    sb_puts(&doc, "\n  \t\n\nshort one\nsecond line\n");
    char *en = write_tmp("xlmr_pt_en.txt", doc.data, doc.len);
    IntVec one = {0};
    tokenizer_encode_xlmr(t, "the model of the world and the text", 35, 0, &one);
    int per_line = (int)one.n - 2, max_len = 20, per = max_len - 2;
    char arg[600];
    snprintf(arg, sizeof arg, "xx=%s", en);
    const char *files[1] = {arg};
    PretrainCorpus c;
    int ok = pretrain_corpus_load(&c, t, files, 1, max_len, 0.05) == 0;
    CHECK(ok, "corpus load: %s", xerr_msg());
    if (ok) {
        const PretrainLang *lg = &c.langs[0];
        int first = (40 * per_line + per - 1) / per, nb = (int)lg->len.n;
        CHECK(!strcmp(lg->name, "xx") && lg->n_docs == 2, "LANG=FILE names the language; two documents (%d)",
              lg->n_docs);
        CHECK(nb == first + 1 && lg->start.data[first] == 40 * per_line && lg->len.data[first - 1] <= per,
              "blocks never cross documents: %d blocks, the second document starts block %d", nb, first);
        int full = 1;
        for (int k = 0; k + 1 < first; k++) full &= lg->len.data[k] == per;
        CHECK(full, "blocks of max_len - 2 tokens within a document");
        int held = 0;
        for (size_t i = 0; i < lg->held.n; i++) held += lg->held.data[i] == 19;
        CHECK(nb >= 20 ? (lg->held.n == (size_t)(nb / 20) && held == 1) : (lg->held.n == 1 && lg->held.data[0] == nb - 1),
              "held out: every 20th block (%zu of %d)", lg->held.n, nb);
        CHECK(lg->train.n + lg->held.n == (size_t)nb, "every block trains or is held out");
        pretrain_corpus_free(&c);
    }
    /* bad input: one line each, naming the file */
    char *empty = write_tmp("xlmr_pt_empty.txt", "", 0), *blank = write_tmp("xlmr_pt_blank.txt", "\n \n\t\n", 5);
    char *bad = write_tmp("xlmr_pt_bad.txt", "fine\nbad \xff byte\n", 15);
    struct {
        const char *file, *want;
    } cases[] = {{empty, "no text"}, {blank, "no text"}, {bad, ":2: not valid UTF-8"},
                 {"/nonexistent/de.txt", "/nonexistent/de.txt"}, {"=x.txt", "cannot tell the language"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *f1[1] = {cases[i].file};
        int rc = pretrain_corpus_load(&c, t, f1, 1, max_len, 0.05);
        CHECK(rc != 0 && strstr(xerr_msg(), cases[i].want) && !strchr(xerr_msg(), '\n'), "bad text %s: %s",
              cases[i].file, xerr_msg());
    }
    const char *twice[2] = {arg, arg};
    CHECK(pretrain_corpus_load(&c, t, twice, 2, max_len, 0.05) != 0 && strstr(xerr_msg(), "given twice"),
          "a language twice: %s", xerr_msg());
    remove(en); remove(empty); remove(blank); remove(bad);
    free(en); free(empty); free(blank); free(bad);
    sb_free(&doc);
    iv_free(&one);
    tokenizer_free(t);
}

int main(void) {
    check_masking();
    check_lang_probs();
    check_corpus();
    return test_summary("pretrain");
}
