/* cmd_pairs.c: `xlmr pairs` — SQuAD-format files to the training TSV of
 * sampler.h (squad.h loads them and writes the rows). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "squad.h"
#include "util.h"

int cmd_pairs(int argc, char **argv) {
    char *dataset = NULL, *data = NULL, *split_s = NULL, *cand = "sentence", *out = NULL, *lang = "en";
    char *langs_s = NULL;
    Opt opts[] = {
        {"dataset", OPT_STR, &dataset, "NAME", "xquad-r, mlqa-r or squad (required)"},
        {"data", OPT_STR, &data, "DIR", "the data set's folder (data/xquad-r); for squad a SQuAD-format file or a folder of them (required)"},
        {"split", OPT_STR, &split_s, "S", "train, dev, test or all (default: train for xquad-r/mlqa-r, all for squad). By article: "
                                          "index k of en.json, k mod 10 = 0-5 train, 6-7 dev, 8-9 test; other languages follow "
                                          "the en article of their first question"},
        {"candidate", OPT_STR, &cand, "MODE", "sentence (default) or context: the passage is the answer's sentence, "
                                             "or the sentence + \" \" + its paragraph"},
        {"langs", OPT_STR, &langs_s, "L,L", "languages to use (xquad-r/mlqa-r; default all)"},
        {"lang", OPT_STR, &lang, "L", "language code written for squad (default en)"},
        {"out", OPT_STR, &out, "FILE", "output TSV, written atomically (default stdout)"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr pairs --dataset NAME --data DIR",
               "Writes training pairs as TSV: group<TAB>lang<TAB>query<TAB>passage (group = question id; "
               "passage = the sentence holding the answer; no prefixes; tabs and newlines in texts become spaces; "
               "lines starting with # are comments).",
               NULL);
    opts_require("pairs", "dataset", dataset);
    opts_require("pairs", "data", data);
    int context = 0;
    if (!strcmp(cand, "context")) context = 1;
    else if (strcmp(cand, "sentence") != 0) die("pairs: --candidate must be sentence or context");
    int lareqa = strcmp(dataset, "squad") != 0;
    SquadData d;
    if (squad_load_csv(&d, dataset, data, langs_s, lang, split_s ? split_s : lareqa ? "train" : "all")) die_xerr();
    AtomicFile af;
    FILE *f = stdout;
    if (out && !(f = atomic_open(&af, out))) die_xerr();
    fprintf(f, "# xlmr pairs: dataset=%s split=%s candidate=%s questions=%d\n", dataset,
            split_s ? split_s : lareqa ? "train" : "all", cand, d.n_qs);
    fprintf(f, "# group\tlang\tquery\tpassage\n");
    squad_write_pairs(&d, f, context, 0);
    int rc = 0;
    if (out) rc = atomic_commit(&af);
    else if (fflush(stdout) != 0) rc = xerr("stdout: write error");
    fprintf(stderr, "pairs: %d questions, %d languages, %d sentences\n", d.n_qs, d.n_langs, d.n_sents);
    squad_free(&d);
    if (rc) die_xerr();
    return 0;
}
