/* squad.h: SQuAD-format question answering data as retrieval data — the
 * XQuAD-R / MLQA-R evaluation sets (a folder of per-language files, file name =
 * language code: ar.json, de.json, ...), the SQuAD v1.1 train file and other
 * SQuAD-format files (native QA sets) — and the training TSV written from
 * them (squad_write_pairs, used by `xlmr pairs` in cmd_pairs.c).
 *
 * Sentences: paragraphs with `sentences` + `sentence_breaks` (LAReQA) use them
 * as given; others are split by squad_split_sentences(). Offsets (answer_start,
 * sentence breaks) are in Unicode code points, as in the files.
 *
 * Splits (--split train|dev|test|all) are by ARTICLE, with one rule for every
 * language: article k of the folder's en.json goes to
 *     k mod 10 in 0..5: train,  6..7: dev,  8..9: test.
 * An article of another language file takes the split of the en.json article
 * that holds its first question id (XQuAD-R articles are parallel, so this is
 * also its own index; MLQA-R articles differ per language but each maps to one
 * English article). Without en.json, or for an id not in it, the article's own
 * index in its file is used. XQuAD-R: 30 / 8 / 10 of its 48 articles. */
#ifndef XLMR_SQUAD_H
#define XLMR_SQUAD_H

#include <stdio.h>

#include "strmap.h"
#include "util.h"

#define SQUAD_MAX_LANGS 32

enum { SPLIT_ALL = 0, SPLIT_TRAIN = 1, SPLIT_DEV = 2, SPLIT_TEST = 3 };
/* "train"/"dev"/"test"/"all" (NULL: all) -> SPLIT_*, or -1 + xerr. */
int squad_split_parse(const char *s);
/* SPLIT_* -> "all"/"train"/"dev"/"test". */
const char *squad_split_name(int split);
/* The split of article index k (the rule above). */
int squad_split_of_article(int k);

typedef struct {
    char *text;   /* the sentence */
    int para;     /* its paragraph */
} SquadSentence;

typedef struct {
    char *context; /* the whole paragraph */
    int lang;      /* index into langs */
    int article;   /* article index within its file */
    int first_sent, n_sent; /* its sentences: sents[first_sent .. first_sent+n_sent) */
} SquadParagraph;

typedef struct {
    char *id, *question;
    int lang, para;
    int answer_start; /* code points into the paragraph (first answer) */
    int sent;         /* the sentence holding answer_start: an index into sents */
    int group;        /* dense index of the id: questions with the same id share it */
} SquadQuestion;

/* Candidates are the sentences in load order: language by language (in the
 * order given), then article, paragraph, sentence. So each language's
 * candidates are one contiguous range [lang_first[l], lang_first[l+1]). */
typedef struct {
    int n_langs;
    char langs[SQUAD_MAX_LANGS][16];
    int lang_first[SQUAD_MAX_LANGS + 1]; /* candidate range per language */
    int n_paras, n_sents, n_qs, n_groups;
    SquadParagraph *paras;
    SquadSentence *sents;
    SquadQuestion *qs;
    int *rel; /* (n_groups, n_langs): the relevant sentence of a group in a language, or -1 */
} SquadData;

/* The LAReQA data sets: dataset "xquad-r" (ar de el en es hi ru th tr vi zh) or
 * "mlqa-r" (ar de en es hi vi zh) from DIR/<lang>.json; langs (n > 0) selects a
 * subset (else all). "squad": DIR is one SQuAD-format file or a folder of them
 * (*.json, sorted), all of language `lang` (NULL: "en").
 * -1 + xerr naming the file on bad data: not SQuAD format, bad JSON, an
 * answer_start outside every sentence. */
int squad_load(SquadData *d, const char *dataset, const char *dir, char *const *langs, int n_langs,
               const char *lang, int split);
/* squad_load as the commands call it: the languages as a comma-separated list
 * (NULL: all) and the split by name (squad_split_parse). */
int squad_load_csv(SquadData *d, const char *dataset, const char *dir, const char *langs, const char *lang,
                   const char *split);
void squad_free(SquadData *d);

/* Writes the training pairs of `xlmr pairs`, one line per question:
 * group<TAB>lang<TAB>query<TAB>passage (group = question id; passage = the
 * answer's sentence, + " " + its paragraph when context; tabs and newlines in
 * texts become spaces). Only questions of groups < max_groups (all when <= 0).
 * Returns the number of lines written. */
int squad_write_pairs(const SquadData *d, FILE *f, int context, int max_groups);

/* Sentence breaks for text without them: [start,end) code-point spans that
 * cover the text. A sentence ends after ., !, ?, 。, ！, ？, ।, ۔, ؟, ‼ (and
 * closing quotes/brackets right after) when followed by whitespace or the end;
 * the full-width/CJK enders need no space after them. Spans include the
 * trailing whitespace (so every offset lies in one); texts are trimmed.
 * Appends 2 ints per sentence (start, end) to breaks; returns the count. */
int squad_split_sentences(const char *text, IntVec *breaks);


#endif
