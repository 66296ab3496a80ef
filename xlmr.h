/* xlmr.h: the XLM-RoBERTa encoder — Hugging Face model folders in and out,
 * forward pass identical to transformers.XLMRobertaModel (eval mode), pooling,
 * and a backward pass for every parameter. Knows nothing of data or text:
 * it takes token ids. */
#ifndef XLMR_XLMR_H
#define XLMR_XLMR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n_layers;    /* num_hidden_layers (L) */
    int hidden;      /* hidden_size (C) */
    int n_heads;     /* num_attention_heads (NH) */
    int ffn;         /* intermediate_size (F) */
    int vocab;       /* vocab_size (V) */
    int max_pos;     /* max_position_embeddings (P) */
    int type_vocab;  /* type_vocab_size */
    int pad_id;      /* pad_token_id (1 for XLM-R) */
    float ln_eps;    /* layer_norm_eps (1e-5 for XLM-R; never the class default) */
    float hidden_dropout; /* hidden_dropout_prob */
    float attn_dropout;   /* attention_probs_dropout_prob */
    /* The masked-LM head (XLMRobertaForMaskedLM.lm_head): present when the
     * folder's weights hold lm_head.dense.weight (xlmr_load) or when asked for
     * (xlmr_build). Its decoder is the word-embedding table unless
     * tie_word_embeddings is false and lm_head.decoder.weight is stored. */
    int mlm_head;            /* 0: the encoder alone (XLMRobertaModel) */
    int tie_word_embeddings; /* config.json's tie_word_embeddings (default true) */
} XlmrConfig;

enum { POOL_MEAN = 0, POOL_CLS = 1 };
/* "mean" -> POOL_MEAN, "cls" -> POOL_CLS; -1 + xerr otherwise. */
int xlmr_pooling_parse(const char *name);

/* Tensor ids, in the order of the flat parameter buffer. The table in xlmr.c
 * gives each its HF name, shape, and flags (per layer, weight decay, lazy rows);
 * every loop over the model's tensors goes through these ids. */
typedef enum {
    XLMR_T_WORD_EMB, XLMR_T_POS_EMB, XLMR_T_TYPE_EMB, XLMR_T_EMB_LN_W, XLMR_T_EMB_LN_B,
    XLMR_T_Q_W, XLMR_T_Q_B, XLMR_T_K_W, XLMR_T_K_B, XLMR_T_V_W, XLMR_T_V_B,
    XLMR_T_AO_W, XLMR_T_AO_B, XLMR_T_LN1_W, XLMR_T_LN1_B,
    XLMR_T_FC_W, XLMR_T_FC_B, XLMR_T_FO_W, XLMR_T_FO_B, XLMR_T_LN2_W, XLMR_T_LN2_B,
    /* the masked-LM head: 0 elements unless cfg.mlm_head (the decoder also needs untied) */
    XLMR_T_LM_DENSE_W, XLMR_T_LM_DENSE_B, XLMR_T_LM_LN_W, XLMR_T_LM_LN_B, XLMR_T_LM_BIAS, XLMR_T_LM_DECODER_W,
    XLMR_NUM_TENSORS
} XlmrTensorId;

/* The parameters (or their gradients) by name: each a slice of one flat
 * buffer, in XlmrTensorId order. Per-layer tensors are stacked (L, ...); the
 * model reaches layer l's slices through XlmrLayerWeights (xlmr.c). Linear
 * weights are (out, in), as nn.Linear. */
typedef struct {
    float *word_emb;  /* (V, C)  embeddings.word_embeddings.weight */
    float *pos_emb;   /* (P, C)  embeddings.position_embeddings.weight */
    float *type_emb;  /* (TV, C) embeddings.token_type_embeddings.weight */
    float *emb_ln_w;  /* (C)     embeddings.LayerNorm.weight */
    float *emb_ln_b;  /* (C)     embeddings.LayerNorm.bias */
    float *q_w;       /* (L, C, C) encoder.layer.i.attention.self.query.weight */
    float *q_b;       /* (L, C) */
    float *k_w;       /* (L, C, C) ...attention.self.key */
    float *k_b;       /* (L, C) */
    float *v_w;       /* (L, C, C) ...attention.self.value */
    float *v_b;       /* (L, C) */
    float *ao_w;      /* (L, C, C) ...attention.output.dense */
    float *ao_b;      /* (L, C) */
    float *ln1_w;     /* (L, C) ...attention.output.LayerNorm */
    float *ln1_b;     /* (L, C) */
    float *fc_w;      /* (L, F, C) ...intermediate.dense */
    float *fc_b;      /* (L, F) */
    float *fo_w;      /* (L, C, F) ...output.dense */
    float *fo_b;      /* (L, C) */
    float *ln2_w;     /* (L, C) ...output.LayerNorm */
    float *ln2_b;     /* (L, C) */
    float *lm_dense_w; /* (C, C) lm_head.dense.weight */
    float *lm_dense_b; /* (C)    lm_head.dense.bias */
    float *lm_ln_w;    /* (C)    lm_head.layer_norm.weight */
    float *lm_ln_b;    /* (C)    lm_head.layer_norm.bias */
    float *lm_bias;    /* (V)    lm_head.bias (= lm_head.decoder.bias) */
    float *lm_decoder; /* (V, C) lm_head.decoder.weight when untied; empty when tied (word_emb is the decoder) */
} XlmrParams;

typedef struct XlmrActs XlmrActs; /* activations kept for backward, sized (B,T) */

typedef struct {
    XlmrConfig cfg;
    XlmrParams params;           /* views into params_memory */
    XlmrParams grads;            /* views into grads_memory (NULL until xlmr_grads_alloc) */
    float *params_memory;
    float *grads_memory;
    size_t n_params;
    size_t sizes[XLMR_NUM_TENSORS];   /* element count of each tensor, in order */
    size_t offsets[XLMR_NUM_TENSORS]; /* element offset of each tensor in the flat buffer */
    /* Word-embedding rows that received gradient since the last xlmr_zero_grad():
     * backward, zero_grad and the optimizer touch only these rows (XLM-R's table
     * is 250002 x 768; a dense pass per step would dominate the step). */
    int *touched_rows;
    int n_touched;
    unsigned char *row_touched;  /* (V) flags */
    int use_bf16;                /* compute GEMMs in BF16 (fp32 master weights) */
    struct Bf16Packed **bf16_packed; /* (L,6) the layers' weights packed for BF16 inference, or NULL */
    int use_ref_gemm;            /* tests: sgemm_ref everywhere (the scalar ground truth) */
} Xlmr;

/* ---- folders ---- */
/* Reads config.json (errors name the file and the key). */
int xlmr_config_read(XlmrConfig *cfg, const char *path);
/* XLM-R's settings with the shape of xlm-roberta-base: max_position_embeddings
 * 514, type_vocab 1, pad_token_id 1, layer_norm_eps 1e-5, dropout 0.1; vocab 0
 * (the caller's: tokenizer_xlmr_vocab). */
void xlmr_config_default(XlmrConfig *cfg);
/* xlmr_config_default with the shape (layers/hidden/heads/ffn) of a preset:
 * nano 1/32/1/128, micro 2/64/2/256 (tests), tiny 2/128/2/512, mini
 * 4/256/4/1024, small 6/384/6/1536 (CPU training), base 12/768/12/3072,
 * large 24/1024/16/4096 (XLM-R's). -1 + xerr on an unknown name. */
int xlmr_preset(XlmrConfig *cfg, const char *name);
/* The most tokens a sequence may hold, <s> and </s> included: positions start
 * after pad_id (RoBERTa), so max_pos - pad_id - 1. */
int xlmr_max_len(const XlmrConfig *cfg);
/* Checks a config for consistency (heads divide hidden, sizes positive, ...). */
int xlmr_config_check(const XlmrConfig *cfg, const char *name);
/* Allocates a model with zeroed parameters for cfg. */
int xlmr_build(Xlmr *m, const XlmrConfig *cfg);
/* HF initialisation: weights N(0, 0.02), biases 0, LayerNorm 1/0, padding row 0. */
void xlmr_init_random(Xlmr *m, uint64_t seed);
/* Loads DIR/config.json + DIR/model.safetensors (F32/F16/BF16, with or without
 * the "roberta." prefix; pooler.* ignored). The masked-LM head is loaded when
 * lm_head.dense.weight is there (then every head tensor must be; lm_head.bias
 * may be stored as lm_head.decoder.bias), else lm_head.* is ignored. -1 + xerr
 * on any problem. */
int xlmr_load(Xlmr *m, const char *dir);
/* Writes DIR/config.json and DIR/model.safetensors (F32, HF names), each
 * atomically, and copies spm_model (may be NULL) to DIR/sentencepiece.bpe.model.
 * With a head: XLMRobertaForMaskedLM's layout (body under "roberta.", lm_head.*,
 * no lm_head.decoder.weight when tied). */
int xlmr_save(const Xlmr *m, const char *dir, const char *spm_model);
/* dst = src with a masked-LM head: src's head if it has one, else a fresh HF
 * initialisation of it (seed), tied to the word embeddings. src is unchanged. */
int xlmr_with_mlm_head(Xlmr *dst, const Xlmr *src, uint64_t seed);
void xlmr_free(Xlmr *m);
/* The tensor table, by XlmrTensorId. HF name: a printf format taking the layer
 * for the per-layer tensors, e.g. "encoder.layer.%d.attention.self.query.weight". */
const char *xlmr_tensor_name(int i);
int xlmr_tensor_is_layered(int i);   /* 1 for the (L, ...) tensors */
int xlmr_tensor_decays(int i);       /* 0 for biases and LayerNorm (AdamW: no weight decay) */
/* 1 for the word-embedding table: only its touched_rows carry gradient, and
 * zero_grad, the optimizer and the gradient norm visit only those rows. */
int xlmr_tensor_lazy_rows(int i);
int xlmr_tensor_in_head(int i);      /* 1 for lm_head.* (never under the "roberta." prefix) */
/* 1 when a model of config c holds tensor i: the head's only with a head, the
 * decoder only untied (Xlmr.sizes[i] is 0 for the others). */
int xlmr_tensor_present(const XlmrConfig *c, int i);
/* Shape of tensor i as stored in model.safetensors (one layer's slice for the
 * layered ones): writes shape[0..ndim) and returns ndim (1 or 2). */
int xlmr_tensor_shape(const XlmrConfig *cfg, int i, size_t shape[2]);
/* The encoder's parameters less its word, position and token-type embedding
 * tables (and the masked-LM head): the size small encoders are compared by,
 * since a 32k vocabulary dominates their total. */
size_t xlmr_non_embedding_params(const XlmrConfig *c);

/* ---- inference ---- */
/* out (B,C): L2-normalised pooled embeddings of ids (B,T), padded with pad_id.
 * Eval mode (no dropout), bounded scratch memory, parallel over the batch. */
int xlmr_embed(Xlmr *m, float *out, const int *ids, int B, int T, int pooling);
/* 0, or -1 + xerr when an id is outside [0, V) or a row has more non-pad tokens
 * than the position table allows (max_pos - pad_id - 1). */
int xlmr_check_ids(const Xlmr *m, const int *ids, int B, int T);
/* BF16 inference (use_bf16): the layers' six weight matrices packed once into
 * the BF16 engine's layout (2 bytes a weight), so that forwards skip
 * converting them, as a model converted to bfloat16 would. The parameters
 * must not change until xlmr_bf16_unpack (backward refuses to run);
 * xlmr_embed_ragged brackets its batches with the pair. Results are bitwise
 * those without. No-op when use_bf16 is 0 or the model is already packed. */
void xlmr_bf16_pack(Xlmr *m);
void xlmr_bf16_unpack(Xlmr *m);
/* out (n,C): embeddings of n id sequences of any lengths (each <= the model's
 * limit): sorted by length and run `batch` at a time (<= 0: 32) so that little
 * is spent on padding. label: a progress line with ETA on stderr (may be NULL).
 * In a job of P ranks (dist.h, every rank calls it with the same input) rank r
 * embeds the batches j = r mod P and the rows are shared: every rank gets out,
 * equal to one process's. */
int xlmr_embed_ragged(Xlmr *m, float *out, const int *const *ids, const int *lens, int n, int batch,
                      int pooling, const char *label);

/* ---- training ---- */
/* Dropout masks are a pure function of (seed, seq_base + b, layer, site, position),
 * so re-running a forward on a chunk of the batch reproduces the same masks
 * (gradient caching) whatever the chunking and thread count. */
typedef struct {
    int train;        /* 0: eval mode, no dropout */
    uint64_t seed;
    int seq_base;     /* index of row 0 of this call within the whole batch */
} XlmrDropout;

XlmrActs *xlmr_acts_build(const Xlmr *m, int B, int T);
void xlmr_acts_free(XlmrActs *a);
/* Forward keeping activations in a (built for at least B x T).
 * out (B,C): L2-normalised pooled embeddings (may be NULL: the masked-LM head
 * reads the hidden states). dropout may be NULL (eval).
 * ids must pass xlmr_check_ids (tokenizer output does); otherwise it dies. */
void xlmr_forward(Xlmr *m, XlmrActs *a, float *out, const int *ids, int B, int T,
                  int pooling, const XlmrDropout *dropout);
/* Hidden state after layer l (l = 0: embeddings LayerNorm output; l = L: last),
 * (B,T,C), valid after xlmr_forward. For parity tests. */
const float *xlmr_acts_hidden(const XlmrActs *a, int l);
/* Allocates the gradient buffer (same layout as the parameters), zeroed. */
int xlmr_grads_alloc(Xlmr *m);
void xlmr_zero_grad(Xlmr *m);
/* dout (B,C): gradient of the loss w.r.t. the normalised embeddings of the last
 * xlmr_forward on a. Accumulates (+=) into m->grads. A backward uses up a's
 * activations (it overwrites some with what it derives from them): run
 * xlmr_forward again before another backward. */
void xlmr_backward(Xlmr *m, XlmrActs *a, const float *dout);
/* The same from dh (B,T,C), the gradient w.r.t. the last hidden state (the
 * masked-LM head's input); dh is not modified. */
void xlmr_backward_hidden(Xlmr *m, XlmrActs *a, const float *dh);

/* ---- the masked-LM head (XLMRobertaForMaskedLM.lm_head) ----
 *   x = h_last[pos]; d = x Wdᵀ + bd; g = gelu(d); y = LayerNorm(g) (eps = ln_eps)
 *   logits = y Eᵀ + bias,  E = word_emb (tied) or lm_decoder (untied)
 * Logits only at the M chosen positions: (M,V), not (B T, V).
 *
 * The tied decoder's gradient dE += dlogitsᵀ y is dense: every one of the V
 * rows gets gradient. mlm_head_backward therefore marks every word-embedding
 * row touched, so zero_grad, the gradient norm and AdamW visit the whole table
 * (the lazy-row update becomes exact dense AdamW on it). At 250,002 x 768 that
 * is 192M values: 768 MB of gradient plus 1.5 GB of moments (already held once
 * every row has been seen), and an O(V C) pass per step, small beside the
 * decoder's own 3 M V C multiply-adds (M = 1,920 masked positions at batch
 * 100 x 128: 1.1 TFLOP per step) and its (M,V) logits (1.9 GB at that M: run
 * the batch in chunks). */
typedef struct XlmrMlmActs XlmrMlmActs;
XlmrMlmActs *xlmr_mlm_acts_build(const Xlmr *m, int M); /* for up to M positions */
void xlmr_mlm_acts_free(XlmrMlmActs *h);
/* logits (M,V) at rows pos[0..M) of the last xlmr_forward on a (row b T + t).
 * -1 + xerr when the model has no head or a position is out of range. */
int xlmr_mlm_forward(Xlmr *m, const XlmrActs *a, XlmrMlmActs *h, float *logits, const int *pos, int M);
/* From dlogits (M,V) of the last xlmr_mlm_forward on h: head gradients +=,
 * then the encoder's backward (xlmr_backward_hidden), so m->grads += the
 * gradient of the loss through the whole model. */
void xlmr_mlm_backward(Xlmr *m, XlmrActs *a, XlmrMlmActs *h, const float *dlogits);

#endif
