/* stfolder.h: the files beside config.json that make a model folder load as
 * it is in sentence-transformers (>= 3) and in transformers' AutoTokenizer,
 * written with every model folder and read back by embed, eval and train.
 *
 * Written (each atomically):
 *   modules.json                       Transformer (path ""), 1_Pooling, 2_Normalize
 *   1_Pooling/config.json              word_embedding_dimension, pooling_mode_* (mean or cls)
 *   2_Normalize/                       empty (Normalize has no files)
 *   sentence_bert_config.json          max_seq_length, do_lower_case false
 *   config_sentence_transformers.json  prompts {"query", "passage"}, similarity cosine
 *   tokenizer_config.json              XLMRobertaTokenizer, model_max_length, special tokens
 *   special_tokens_map.json            the same special tokens (<mask> with lstrip)
 * Read: the same files, all optional; a Transformer module in a subfolder
 * (e.g. "0_Transformer") is where the model's own files are. Modules other
 * than Transformer, Pooling (mean or cls) and Normalize are an error naming
 * them: the program computes only those (so is do_lower_case true). Uses json, util and xlmr (pooling
 * ids, xlmr_save). */
#ifndef XLMR_STFOLDER_H
#define XLMR_STFOLDER_H

#include "xlmr.h"

typedef struct {
    int pooling;          /* POOL_MEAN / POOL_CLS; -1: the folder does not say */
    int max_seq_length;   /* sentence_bert_config.json; 0: not given */
    char *query_prompt;   /* config_sentence_transformers.json prompts; NULL: not given */
    char *passage_prompt;
    char *default_prompt; /* read: the prompt default_prompt_name names (embed's default); NULL: none */
    char *model_dir;      /* read: where config.json and the weights are (DIR or DIR/0_Transformer) */
    int normalize;        /* read: 1 when modules.json lists Normalize (written: always) */
    int has_modules;      /* read: 1 when the folder has modules.json */
} StFolder;

/* Writes the files above into dir. hidden: word_embedding_dimension; vocab:
 * the model's vocabulary (<mask> is its last id); model_max_length: tokens
 * the model takes (xlmr_max_len). f->pooling and the prompts must be set. */
int stfolder_write(const char *dir, const StFolder *f, int hidden, int vocab, int model_max_length);
/* xlmr_save (config.json, model.safetensors, the tokenizer), then the files
 * above for m's width, vocabulary and limit; f->max_seq_length 0: the limit. */
int stfolder_save_model(const Xlmr *m, const char *dir, const char *spm, const StFolder *f);
/* Reads what dir says; absent files leave the fields unset (pooling -1, 0,
 * NULL), model_dir is dir itself unless modules.json says otherwise. -1 +
 * xerr("FILE: ...") on a malformed file or an unsupported module. */
int stfolder_read(const char *dir, StFolder *f);
void stfolder_free(StFolder *f);

/* A length default fitted to the model: dflt when <= limit, else limit with
 * one note on stderr ("CMD: WHAT default DFLT lowered to the model's limit
 * LIMIT"). */
int stfolder_fit_default(int dflt, int limit, const char *cmd, const char *what);

#endif
