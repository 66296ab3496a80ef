/* corpus.h: the pretraining corpus of `xlmr corpus`, from the non-evaluation
 * text of data/ only:
 *   SQuAD v1.1 train paragraphs (en), the native QA paragraphs (ar ARCD, zh
 *   CMRC 2018, tr TQuAD), the XQuAD-R *train split* paragraphs (11 languages;
 *   its dev and test articles never), NTREX-128 (one document per news
 *   document of DOCUMENT_IDS.tsv) and Tatoeba (documents of 20 consecutive
 *   sentences; the English side once per distinct sentence).
 *   MLQA-R is never read.
 * Writes OUT/LANG.txt per language (documents separated by blank lines, a
 * paragraph's newlines turned into spaces: pretrain.h's format) and
 * OUT/parallel.tsv (group<TAB>lang<TAB>text: the NTREX line in every language
 * and each Tatoeba pair), all atomically. */
#ifndef XLMR_CORPUS_H
#define XLMR_CORPUS_H

#include "tokenizer.h"

typedef struct {
    char lang[16];
    long long docs, chars, tokens; /* chars: bytes of UTF-8; tokens: with tok (pieces, no <s> </s>), else -1 */
} CorpusStats;

/* Builds the corpus from data_dir into out_dir; *stats (malloc'd, *n of them, by
 * language name) and *n_parallel (rows of parallel.tsv). tok may be NULL (no
 * token counts). -1 + xerr naming the file on missing or bad data. */
int corpus_build(const char *data_dir, const char *out_dir, const Tokenizer *tok, CorpusStats **stats, int *n,
                 long long *n_parallel);

#endif
