/* fuzz/fuzz_squad.c: the SQuAD-format reader (squad_load, dataset "squad": one
 * file) on arbitrary files, with both candidate layouts' inputs (LAReQA
 * sentences + sentence_breaks, or squad_split_sentences); data that loads is
 * checked for consistency. Valid UTF-8 inputs also go straight through
 * squad_split_sentences, whose spans must cover the text. */
#include "fuzz/fuzz_common.h"
#include "squad.h"

FUZZ_TARGET(squad) {
    /* the sentence splitter on the raw text */
    if (size && memchr(data, 0, size) == NULL && utf8_valid((const char *)data, size)) {
        char *text = fuzz_strdup(data, size);
        IntVec br = {0};
        int n = squad_split_sentences(text, &br);
        if (n < 0 || br.n != 2 * (size_t)n) abort();
        for (int i = 0; i < n; i++) {
            if (br.data[2 * i] > br.data[2 * i + 1]) abort();
            if (i > 0 && br.data[2 * i] < br.data[2 * i - 1]) abort(); /* spans in order, no overlap */
        }
        iv_free(&br);
        free(text);
    }
    /* odd sizes: an XQuAD-R folder holding en.json (LAReQA layout, split by
     * article); even sizes: one plain SQuAD-format file */
    int lareqa = size & 1;
    SquadData d;
    memset(&d, 0, sizeof d);
    int split = size ? data[size - 1] % 4 : SPLIT_ALL;
    int rc;
    if (lareqa) {
        char *dir = path_join(fuzz_scratch_dir(), "xquad-r");
        if (mkdir_p(dir)) abort();
        free(dir);
        fuzz_tmpfile("xquad-r/en.json", data, size);
        char *langs[1] = {"en"};
        dir = path_join(fuzz_scratch_dir(), "xquad-r");
        rc = squad_load(&d, "xquad-r", dir, langs, 1, NULL, split);
        free(dir);
    } else {
        const char *path = fuzz_tmpfile("squad.json", data, size);
        rc = squad_load(&d, "squad", path, NULL, 0, "xx", split);
    }
    if (rc != 0) {
        if (strstr(xerr_msg(), ".json") == NULL) abort(); /* errors name the file */
        return 0;
    }
    if (d.n_langs != 1 || d.lang_first[0] != 0 || d.lang_first[1] != d.n_sents) abort();
    for (int i = 0; i < d.n_qs; i++) {
        const SquadQuestion *q = &d.qs[i];
        if (q->para < 0 || q->para >= d.n_paras || q->sent < 0 || q->sent >= d.n_sents) abort();
        if (q->group < 0 || q->group >= d.n_groups) abort();
        if (d.sents[q->sent].para != q->para) abort(); /* the answer's sentence is in its paragraph */
    }
    for (int p = 0; p < d.n_paras; p++)
        if (d.paras[p].first_sent < 0 || d.paras[p].n_sent < 0 || d.paras[p].first_sent + d.paras[p].n_sent > d.n_sents)
            abort();
    for (int g = 0; g < d.n_groups; g++) {
        int r = d.rel[g];
        if (r < -1 || r >= d.n_sents) abort();
    }
    squad_free(&d);
    return 0;
}
