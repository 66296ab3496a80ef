/* cmd_eval.c: `xlmr eval` — a model folder on XQuAD-R / MLQA-R (eval.h does the work). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "encode.h"
#include "eval.h"
#include "squad.h"
#include "stfolder.h"
#include "tokenizer.h"
#include "util.h"
#include "xlmr.h"

int cmd_eval(int argc, char **argv) {
    char *model = NULL, *dataset = NULL, *data = NULL, *pooling = NULL, *cand = "sentence", *langs = NULL;
    char *split_s = "all", *json_out = NULL;
    char *qp = NULL, *pp = NULL;
    int max_len = 0, batch = 32, bf16 = 0;
    Opt opts[] = {
        {"model", OPT_STR, &model, "DIR", "model folder (config.json, model.safetensors, sentencepiece.bpe.model) (required)"},
        {"dataset", OPT_STR, &dataset, "NAME", "xquad-r or mlqa-r (required)"},
        {"data", OPT_STR, &data, "DIR", "the data set's folder, e.g. data/xquad-r (required)"},
        {"pooling", OPT_STR, &pooling, "P", "mean or cls (default: the folder's 1_Pooling, else mean)"},
        {"max-len", OPT_LEN, &max_len, "N", "tokens per text including <s> and </s> (default: the folder's "
                                            "max_seq_length, else the model's limit)"},
        {"query-prefix", OPT_TEXT, &qp, "S", "prepended to questions (default: the folder's query prompt, else \"" XLMR_QUERY_PREFIX "\")"},
        {"passage-prefix", OPT_TEXT, &pp, "S", "prepended to candidates (default: the folder's passage prompt, else \"" XLMR_PASSAGE_PREFIX "\")"},
        {"candidate", OPT_STR, &cand, "MODE", "sentence (default) or context: candidate = sentence + \" \" + its paragraph (LAReQA)"},
        {"langs", OPT_STR, &langs, "L,L", "languages (default: all of the data set)"},
        {"split", OPT_STR, &split_s, "S", "all (default), train, dev or test: by article, index k of en.json, "
                                          "k mod 10 = 0-5 train, 6-7 dev, 8-9 test"},
        {"json", OPT_STR, &json_out, "FILE", "also write the results as JSON (atomically)"},
        {"batch", OPT_COUNT, &batch, "B", "texts per forward call (default 32)"},
        {"bf16", OPT_FLAG, &bf16, NULL, "BF16 matrix products (fp32 weights and accumulation): faster, ~1e-2 off"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr eval --model DIR --dataset NAME --data DIR",
               "Evaluates a model on XQuAD-R / MLQA-R: mono, cross and multilingual retrieval "
               "(mAP, R@1, R@10, rank distance), every sentence a candidate.",
               NULL);
    opts_require("eval", "model", model);
    opts_require("eval", "dataset", dataset);
    opts_require("eval", "data", data);
    if (strcmp(dataset, "xquad-r") != 0 && strcmp(dataset, "mlqa-r") != 0)
        die("eval: --dataset must be xquad-r or mlqa-r");
    EvalOptions o;
    eval_options_default(&o);
    if (pooling && (o.pooling = xlmr_pooling_parse(pooling)) < 0) die("eval: --pooling must be mean or cls");
    if (!strcmp(cand, "context")) o.candidate = EVAL_CAND_CONTEXT;
    else if (strcmp(cand, "sentence") != 0) die("eval: --candidate must be sentence or context");
    if (batch <= 0) die("eval: --batch must be positive");
    /* the folder's sentence-transformers settings where no flag is given */
    StFolder sf;
    if (stfolder_read(model, &sf)) die_xerr();
    if (!pooling && sf.pooling >= 0) o.pooling = sf.pooling;
    o.batch = batch;
    o.query_prefix = qp ? qp : sf.query_prompt ? sf.query_prompt : XLMR_QUERY_PREFIX;
    o.passage_prefix = pp ? pp : sf.passage_prompt ? sf.passage_prompt : XLMR_PASSAGE_PREFIX;
    o.label = "eval";
    EvalData d;
    if (squad_load_csv(&d, dataset, data, langs, NULL, split_s)) die_xerr();
    Xlmr m;
    Tokenizer *t = NULL;
    if (xlmr_load(&m, sf.model_dir)) die_xerr();
    m.use_bf16 = bf16;
    int limit = xlmr_max_len(&m.cfg);
    if (max_len > limit) die("eval: --max-len %d exceeds the model's limit of %d tokens", max_len, limit);
    o.max_len = max_len ? max_len : sf.max_seq_length ? stfolder_fit_default(sf.max_seq_length, limit, "eval", "max_seq_length") : 0;
    if (tokenizer_load(&t, sf.model_dir)) die_xerr();
    EvalResult r;
    if (eval_run(&m, t, &d, &o, &r)) die_xerr();
    /* every rank has the figures (the embeddings are shared, dist.h); rank 0 reports */
    if (dist_rank() == 0) {
        for (int x = 0; x < r.n_langs; x++)
            if (!r.mono_lang[x].n)
                fprintf(stderr, "eval: %s has no questions (split %s): reported as n/a, left out of the averages\n",
                        r.langs[x], split_s);
        printf("%s on %s (split %s)\n", model, dataset, split_s);
        eval_result_print(&r, stdout);
    }
    if (json_out && dist_rank() == 0) {
        StrBuf sb = {0};
        eval_report_json(&r, dataset, model, &sb);
        if (write_file_atomic(json_out, sb.data, sb.len)) die_xerr();
        sb_free(&sb);
    }
    tokenizer_free(t);
    xlmr_free(&m);
    squad_free(&d);
    stfolder_free(&sf);
    return 0;
}
