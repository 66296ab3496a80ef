/* eval.h: retrieval evaluation on XQuAD-R / MLQA-R (LAReQA protocol, paper §3).
 *
 * Candidates: every sentence of every paragraph of every loaded language, one
 * candidate each (not deduplicated: 13,014 for XQuAD-R, 20,534 for MLQA-R).
 * Candidate text = passage prefix + sentence; with EVAL_CAND_CONTEXT it is
 * passage prefix + sentence + " " + paragraph (the LAReQA response encoder's
 * sentence-plus-context input). Question text = query prefix + question.
 * A question's relevant candidates: in each language holding a question with
 * the same id, the sentence of that question's paragraph that contains its
 * answer_start.
 * Score = cosine (dot product of L2-normalised embeddings). The rank of
 * candidate j in a pool is 1 + the number of pool candidates k with a higher
 * score, or an equal score and k < j (ties go to the earlier candidate):
 * eval_rank(), the one definition of the rule, which training's dev mAP uses too.
 *   mono:  queries of X vs the pool of X: mAP (= reciprocal rank) and R@1,
 *          mean over X's questions, macro-averaged over languages.
 *   cross: every ordered pair X != Y, queries of X that have a relevant
 *          sentence in Y vs the pool of Y: mAP and R@1 per pair, macro-averaged
 *          over the pairs (a pair with no such question is left out).
 *   multi: each query vs the union of all pools: AP over all its relevant
 *          candidates (mean over them of precision at their rank), R@10 = the
 *          fraction of them in the top 10, rank distance = worst rank - best
 *          rank; mean per query language, macro-averaged over languages. */
#ifndef XLMR_EVAL_H
#define XLMR_EVAL_H

#include "squad.h"
#include "tokenizer.h"
#include "util.h"
#include "xlmr.h"

typedef SquadData EvalData; /* squad_load(..., "xquad-r" | "mlqa-r", ...) */

enum { EVAL_CAND_SENTENCE = 0, EVAL_CAND_CONTEXT = 1 };

typedef struct {
    int pooling;                /* POOL_MEAN / POOL_CLS */
    int max_len;                /* tokens per text; <= 0: the model's limit */
    int batch;                  /* texts per forward call; <= 0: 32 */
    const char *query_prefix;   /* NULL: XLMR_QUERY_PREFIX */
    const char *passage_prefix; /* NULL: XLMR_PASSAGE_PREFIX */
    int candidate;              /* EVAL_CAND_SENTENCE / EVAL_CAND_CONTEXT */
    const char *label;          /* progress line while embedding (NULL: quiet) */
} EvalOptions;
void eval_options_default(EvalOptions *o);

typedef struct {
    double map, r1;    /* mono / cross */
    double r10, rd;    /* multi: R@10, rank distance */
    int n;             /* questions counted */
} EvalScore;

typedef struct {
    int n_langs;
    char langs[SQUAD_MAX_LANGS][16];
    EvalScore mono, cross, multi;                            /* macro-averages */
    EvalScore mono_lang[SQUAD_MAX_LANGS];                    /* per query language */
    EvalScore cross_pair[SQUAD_MAX_LANGS][SQUAD_MAX_LANGS];  /* [query lang][pool lang]; n = 0: no data */
    EvalScore multi_lang[SQUAD_MAX_LANGS];
    int questions, candidates;
    double embed_seconds, metric_seconds;
} EvalResult;

/* The metrics on given embeddings: q (n_qs, C) in question order, c (n_sents, C)
 * in candidate order, rows L2-normalised (scores are plain dot products).
 * Pure: no model. -1 + xerr on bad arguments. */
int eval_metrics(const EvalData *d, const float *q, const float *c, int C, EvalResult *r);

/* The ranking rule. scores: one query's scores; j in [lo, hi). The 1-based rank
 * of candidate j in the pool [lo, hi): 1 + the number of k in the pool, k != j,
 * with scores[k] > scores[j], or scores[k] == scores[j] and k < j. Ties thus go
 * to the earlier candidate, so ranks are distinct and do not depend on the
 * order in which candidates are visited. A NaN score outranks nothing and is
 * outranked by nothing. */
int eval_rank(const float *scores, int lo, int hi, int j);

/* Average precision of one query from the 1-based ranks of its n relevant
 * candidates (n >= 1): mean over k of (k+1) / ranks[k] after sorting ranks
 * ascending (in place), i.e. the mean over the relevant candidates of the
 * precision at their rank. */
double eval_average_precision(int *ranks, int n);

/* One query's average precision over the pool [0, n) by the rule above:
 * relevant[0..n_rel) are its relevant candidates (distinct, n_rel >= 1);
 * ranks (n_rel ints, scratch) receives their ranks, sorted ascending. */
double eval_query_average_precision(const float *scores, int n, const int *relevant, int n_rel, int *ranks);

/* Embeds every distinct question and candidate text once, then eval_metrics. */
int eval_run(Xlmr *m, const Tokenizer *t, const EvalData *d, const EvalOptions *o, EvalResult *r);

/* {"mono": {"map", "r1", "by_lang": {...}}, "cross": {"map", "r1", "by_pair": {"ar-de": ...}},
 *  "multi": {"map", "r10", "rank_distance", "by_lang": {...}}} */
void eval_result_json(const EvalResult *r, StrBuf *sb);
/* The whole report: {"dataset", "model", "settings": {...}, "questions", "candidates"}. */
void eval_report_json(const EvalResult *r, const char *dataset, const char *model, StrBuf *sb);
/* A readable table: per language and overall, and the cross pairs matrix. */
void eval_result_print(const EvalResult *r, FILE *f);

#endif
