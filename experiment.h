/* experiment.h: `xlmr experiment`, the size x sampling x seed grid of the
 * research question (how does model size change the gap between hybrid and
 * specialised batch sampling?), resumable run by run.
 *
 * Per (size, seed): one initial model (random init from the project
 * tokenizer, or a user's pretrained folder with --model-dirs), shared by every
 * strategy. Per (size, sampling, seed): train_run() on the training pairs with
 * dev-split model selection, then eval_run() on the XQuAD-R test split and on
 * all of MLQA-R; the result is written at once (atomically) as
 * OUT/runs/SIZE-SAMPLING-sSEED.json and results.json, report.md and the charts
 * (report.h) are rebuilt from every finished run. A second invocation skips
 * finished runs and resumes an interrupted one from its last checkpoint.
 *
 * Folders under OUT: runs/ (results), data/ (training and dev TSV), init/
 * (initial models), work/ (training checkpoints, removed when a run is done). */
#ifndef XLMR_EXPERIMENT_H
#define XLMR_EXPERIMENT_H

#include "xlmr.h"

/* A preset name (xlmr_preset: "nano", "micro", "tiny", ...) or "LxH" / "LxHxA" /
 * "LxHxAxF" (layers x hidden [x heads [x ffn]]; heads default max(1, H/64),
 * ffn 4H) -> cfg (xlmr_config_default with that shape; vocab left 0) and
 * name_buf (>= 64 bytes): the size's name in results ("LxHxAxF" for parsed
 * shapes). -1 + xerr on an unknown name or a bad shape. */
int experiment_size_parse(const char *s, XlmrConfig *cfg, char *name_buf);

#endif
