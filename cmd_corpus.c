/* cmd_corpus.c: `xlmr corpus` — the pretraining text files and parallel TSV
 * of corpus.h from data/, with a table of what each language got. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "corpus.h"
#include "tokenizer.h"
#include "util.h"

int cmd_corpus(int argc, char **argv) {
    char *data = "data", *out = NULL, *tok_path = NULL;
    Opt opts[] = {
        {"data", OPT_STR, &data, "DIR", "the data folder of make data (default data)"},
        {"out", OPT_STR, &out, "DIR", "output folder: LANG.txt per language and parallel.tsv"},
        {"tokenizer", OPT_STR, &tok_path, "SPM", "count tokens with this SentencePiece model (or model folder)"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr corpus --out DIR [--data DIR] [--tokenizer SPM]",
               "Writes the pretraining corpus from the non-evaluation text of data/: SQuAD v1.1 train paragraphs, "
               "the native QA paragraphs, the XQuAD-R train-split paragraphs (never dev or test), NTREX-128 and "
               "Tatoeba (never MLQA-R). Prints documents, bytes and tokens per language.",
               NULL);
    opts_require("corpus", "out", out);
    Tokenizer *t = NULL;
    if (tok_path && tokenizer_load(&t, tok_path)) die_xerr();
    CorpusStats *st;
    int n;
    long long n_par;
    if (corpus_build(data, out, t, &st, &n, &n_par)) die_xerr();
    printf("| language | documents | bytes | tokens |\n|---|---:|---:|---:|\n");
    long long docs = 0, bytes = 0, toks = 0;
    for (int i = 0; i < n; i++) {
        printf("| %s | %lld | %lld | %lld |\n", st[i].lang, st[i].docs, st[i].chars, st[i].tokens);
        docs += st[i].docs;
        bytes += st[i].chars;
        toks += st[i].tokens;
    }
    printf("| all | %lld | %lld | %lld |\n", docs, bytes, t ? toks : -1);
    fprintf(stderr, "corpus: %d languages and %lld parallel rows in %s\n", n, n_par, out);
    free(st);
    if (t) tokenizer_free(t);
    return 0;
}
