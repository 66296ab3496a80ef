/* ablation.h: the evidence for the experiment's protocol. The arms cross
 *   the start        random, or masked-LM + TLM pretraining for a budget of
 *                    steps, either of them then trained on English QA or not;
 *   the data         the XQuAD-R train split alone, or with the SQuAD v1.1
 *                    train pairs (English) beside it;
 *   the length       multiples of the grid's fine-tuning steps;
 * and each arm is an experiment grid (experiment.h) of sizes x mono / cross /
 * hybrid x seeds, measured on the XQuAD-R dev split only (--eval-dev: the
 * final models, no model selection; the test split and MLQA-R are never
 * looked at while choosing). Arm A lives in OUT/ablation/A/ (resumable like
 * any grid); the starts are shared by every arm in OUT/pretrained/ and
 * OUT/starts/. OUT/ablation.md and OUT/ablation.json gather the arms: dev mAP
 * mono / cross / multi and rank distance per strategy, each start's zero-shot
 * figures, the random floors, hybrid minus the best specialist, and the wall
 * time of each arm and start. `xlmr experiment --ablation` (cmd_experiment.c). */
#ifndef XLMR_ABLATION_H
#define XLMR_ABLATION_H

#include "experiment.h"

/* The default arms: b = 375 and 4b = 1500 pretraining steps (the second is the
 * grid's default, so its cache serves both), 1x and 4x the fine-tuning steps. */
#define ABLATION_STARTS "random,random+qa,mlm:375,mlm:375+qa,mlm:1500,mlm:1500+qa"
#define ABLATION_DATA "xquad,xquad+squad"
#define ABLATION_LENGTHS "1,4"
#define ABLATION_SIZES "nano,tiny"
#define ABLATION_SIZES_QUICK "nano"

typedef struct {
    ExperimentOptions grid; /* every arm's grid: sizes, seeds, steps (the 1x length), out_dir (OUT), data, ... */
    const char *starts;     /* "S,S": random | mlm:STEPS, each optionally +qa; NULL: ABLATION_STARTS */
    const char *data;       /* "D,D": xquad | xquad+squad; NULL: ABLATION_DATA */
    const char *lengths;    /* "K,K": multiples of the steps; NULL: ABLATION_LENGTHS */
} AblationOptions;

/* Runs every arm's unfinished runs (arms in order: start, data, length), then
 * writes OUT/ablation.md and OUT/ablation.json (rewritten after each arm). */
int ablation_run(const AblationOptions *o);

#endif
