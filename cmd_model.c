/* cmd_model.c: `xlmr init` (a randomly initialised model folder) and
 * `xlmr embed` (stdin lines to L2-normalised embeddings as text, .npy or
 * JSON lines). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "encode.h"
#include "npy.h"
#include "stfolder.h"
#include "tokenizer.h"
#include "util.h"
#include "xlmr.h"

int cmd_init(int argc, char **argv) {
    char *tok = NULL, *out = NULL, *preset = "base";
    int layers = 0, hidden = 0, heads = 0, ffn = 0, max_pos = 514, seed = 0, force = 0, mlm_head = 0;
    Opt opts[] = {
        {"tokenizer", OPT_STR, &tok, "SPM_MODEL", "SentencePiece .model (or a folder holding sentencepiece.bpe.model); "
                                                  "vocab_size = its pieces + 2"},
        {"out", OPT_STR, &out, "DIR", "model folder to write (config.json, model.safetensors, sentencepiece.bpe.model)"},
        {"preset", OPT_STR, &preset, "NAME",
         "layers/hidden/heads/ffn: nano 1/32/1/128, micro 2/64/2/256 (tests), tiny 2/128/2/512, mini 4/256/4/1024, "
         "small 6/384/6/1536 (CPU training), base 12/768/12/3072, large 24/1024/16/4096 (default base)"},
        {"layers", OPT_COUNT, &layers, "L", "override the preset's number of layers"},
        {"hidden", OPT_COUNT, &hidden, "H", "override the preset's hidden size"},
        {"heads", OPT_COUNT, &heads, "A", "override the preset's attention heads (must divide hidden)"},
        {"ffn", OPT_COUNT, &ffn, "F", "override the preset's intermediate (FFN) size"},
        {"max-pos", OPT_COUNT, &max_pos, "P", "max_position_embeddings (default 514: 512 tokens)"},
        {"seed", OPT_INT, &seed, "S", "initialisation seed (default 0)"},
        {"force", OPT_FLAG, &force, NULL, "overwrite --out when it holds a model folder already"},
        {"mlm-head", OPT_FLAG, &mlm_head, NULL, "add the masked-LM head (XLMRobertaForMaskedLM, decoder tied to the "
                                                "word embeddings)"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr init --tokenizer SPM_MODEL --out DIR [options]",
               "Writes a randomly initialised XLM-R model folder (HF initialisation: weights N(0, 0.02), "
               "LayerNorm 1/0, biases 0) that transformers.XLMRobertaModel.from_pretrained loads.",
               NULL);
    opts_require("xlmr init", "tokenizer", tok);
    opts_require("xlmr init", "out", out);
    /* a trained model is hours of work: never replaced by random weights by accident */
    const char *kept[] = {"config.json", "model.safetensors"};
    for (int k = 0; k < 2 && !force; k++) {
        char *p = path_join(out, kept[k]);
        int there = path_exists(p);
        free(p);
        if (there) die("init: %s holds a model folder already (%s): pass --force to overwrite it", out, kept[k]);
    }
    XlmrConfig c;
    if (xlmr_preset(&c, preset)) die("init: %s", xerr_msg());
    Tokenizer *t;
    if (tokenizer_load(&t, tok) != 0) die_xerr();
    if (layers) c.n_layers = layers;
    if (hidden) c.hidden = hidden;
    if (heads) c.n_heads = heads;
    if (ffn) c.ffn = ffn;
    c.vocab = tokenizer_xlmr_vocab(t);
    c.max_pos = max_pos;
    c.mlm_head = mlm_head;
    tokenizer_free(t);
    Xlmr m;
    if (xlmr_build(&m, &c) != 0) die("init: %s", xerr_msg());
    xlmr_init_random(&m, (uint64_t)seed);
    char *spm = tokenizer_model_path(tok);
    /* as `xlmr train` would use it: mean pooling, the method's prompts */
    StFolder sf = {.pooling = POOL_MEAN, .query_prompt = XLMR_QUERY_PREFIX, .passage_prompt = XLMR_PASSAGE_PREFIX};
    if (stfolder_save_model(&m, out, spm, &sf) != 0) die_xerr();
    fprintf(stderr, "init: %s: %d layers, hidden %d, %d heads, ffn %d, vocab %d, %zu parameters\n", out,
            c.n_layers, c.hidden, c.n_heads, c.ffn, c.vocab, m.n_params);
    free(spm);
    xlmr_free(&m);
    return 0;
}

/* Replaces each invalid UTF-8 sequence by U+FFFD, as Python's decode("utf-8",
 * "replace") does for the text HF's tokenizer would see. */
static void utf8_repair(StrBuf *out, const char *s, size_t n) {
    out->len = 0;
    sb_append(out, "", 0);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (k && i + k <= n && utf8_valid(s + i, k)) {
            sb_append(out, s + i, k);
            i += k;
        } else {
            sb_append(out, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
}

/* Parses a line of space-separated ids; -1 + xerr on anything else. */
static int parse_ids(const char *s, size_t n, IntVec *out, long lineno) {
    out->n = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) i++;
        if (i == n) break;
        long v = 0;
        size_t j = i;
        while (j < n && s[j] >= '0' && s[j] <= '9' && v < 100000000) v = v * 10 + (s[j++] - '0');
        if (j == i || (j < n && s[j] != ' ' && s[j] != '\t' && s[j] != '\r') || v >= 100000000)
            return xerr("stdin line %ld: not a list of token ids", lineno);
        iv_push(out, (int)v);
        i = j;
    }
    return 0;
}

/* xlmr-mpi: mpirun gives stdin to rank 0 only; its token ids go to every rank
 * (the count, the lengths, then all ids in one buffer). */
static void share_ids(IntVec **seqs, size_t *n) {
    if (dist_size() == 1) return;
    uint64_t cnt = *n, total = 0;
    dist_bcast(&cnt, sizeof cnt, 0);
    int *lens = xmalloc((size_t)cnt * sizeof(int));
    for (size_t i = 0; i < cnt && dist_rank() == 0; i++) total += (lens[i] = (int)(*seqs)[i].n);
    dist_bcast(lens, (size_t)cnt * sizeof(int), 0);
    dist_bcast(&total, sizeof total, 0);
    int *flat = xmalloc((size_t)total * sizeof(int));
    if (dist_rank() != 0) *seqs = xcalloc((size_t)(cnt ? cnt : 1), sizeof(IntVec));
    for (size_t i = 0, k = 0; i < cnt && dist_rank() == 0; k += (size_t)lens[i++])
        memcpy(flat + k, (*seqs)[i].data, (size_t)lens[i] * sizeof(int));
    dist_bcast(flat, (size_t)total * sizeof(int), 0);
    for (size_t i = 0, k = 0; i < cnt && dist_rank() != 0; k += (size_t)lens[i++])
        for (int t = 0; t < lens[i]; t++) iv_push(&(*seqs)[i], flat[k + t]);
    *n = (size_t)cnt;
    free(lens);
    free(flat);
}

/* Every line of stdin (NUL bytes kept: the length says where it ends), each
 * as XLM-R ids: tokenized with prefix in front, or parsed as ids. */
static IntVec *read_inputs(const Tokenizer *t, const char *prefix, int max_len, size_t *count) {
    IntVec *seqs = NULL;
    char **texts = NULL;
    size_t *tlens = NULL;
    size_t n = 0, cap = 0, llen = 0, plen = prefix ? strlen(prefix) : 0;
    char *line = NULL;
    ssize_t got;
    StrBuf fixed = {0};
    while (dist_rank() == 0 && (got = getline(&line, &llen, stdin)) >= 0) { /* stdin is rank 0's */
        size_t len = (size_t)got, bom = n == 0 ? utf8_bom_len(line, len) : 0;
        if (bom) memmove(line, line + bom, (len -= bom) + 1);
        if (len && line[len - 1] == '\n') len--;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            seqs = xrealloc(seqs, cap * sizeof *seqs);
            texts = xrealloc(texts, cap * sizeof *texts);
            tlens = xrealloc(tlens, cap * sizeof *tlens);
        }
        IntVec *v = &seqs[n++];
        memset(v, 0, sizeof *v);
        texts[n - 1] = NULL;
        if (!t) {
            if (parse_ids(line, len, v, (long)n) != 0) die_xerr();
            if ((int)v->n > max_len) { /* HF-style: <s>, the first max_len-2, </s> */
                v->data[max_len - 1] = v->data[v->n - 1];
                v->n = (size_t)max_len;
            }
            continue;
        }
        fixed.len = 0;
        sb_append(&fixed, prefix ? prefix : "", plen);
        if (!utf8_valid(line, len)) {
            StrBuf rep = {0};
            utf8_repair(&rep, line, len);
            sb_append(&fixed, rep.data, rep.len);
            sb_free(&rep);
        } else
            sb_append(&fixed, line, len);
        texts[n - 1] = xmalloc(fixed.len + 1);
        memcpy(texts[n - 1], fixed.data, fixed.len + 1);
        tlens[n - 1] = fixed.len;
    }
    if (ferror(stdin)) die("stdin: read error: %s", strerror(errno)); /* a directory, a closed descriptor */
    free(line);
    sb_free(&fixed);
    if (t && tokenizer_encode_batch(t, (const char *const *)texts, tlens, (int)n, TOK_XLMR, max_len, seqs) != 0)
        die("embed: %s", xerr_msg());
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(tlens);
    if (n > (size_t)1 << 30) die("embed: too many lines");
    *count = n;
    return seqs;
}

enum { FMT_TEXT, FMT_NPY, FMT_JSONL };

/* out (n, C) in the chosen format, to FILE atomically or to stdout. */
static void write_embeddings(const float *out, size_t n, int C, int format, const char *path) {
    StrBuf sb = {0};
    if (format == FMT_NPY) npy_f32_2d(&sb, out, n, (size_t)C);
    for (size_t i = 0; format != FMT_NPY && i < n; i++) {
        if (format == FMT_JSONL) sb_printf(&sb, "{\"index\": %zu, \"embedding\": [", i);
        for (int c = 0; c < C; c++)
            sb_printf(&sb, c ? (format == FMT_JSONL ? ", %.8g" : " %.8g") : "%.8g", (double)out[i * C + c]);
        sb_puts(&sb, format == FMT_JSONL ? "]}\n" : "\n");
    }
    if (path) {
        if (write_file_atomic(path, sb.data ? sb.data : "", sb.len) != 0) die_xerr();
    } else {
        if (sb.len && fwrite(sb.data, 1, sb.len, stdout) != sb.len) die("stdout: write error: %s", strerror(errno));
        if (stream_flush_checked(stdout, "stdout")) die_xerr();
    }
    sb_free(&sb);
}

int cmd_embed(int argc, char **argv) {
    char *dir = NULL, *pooling = NULL, *prompt = NULL, *prefix = NULL, *format = "text", *output = NULL;
    int max_len = 0, batch = 32, ids_mode = 0, bf16 = 0;
    Opt opts[] = {
        {"model", OPT_STR, &dir, "DIR", "model folder (config.json, model.safetensors, sentencepiece.bpe.model; "
                                        "or a sentence-transformers folder)"},
        {"pooling", OPT_STR, &pooling, "mean|cls", "mean over non-pad tokens or the state of <s> (default: the "
                                                   "folder's 1_Pooling, else mean)"},
        {"max-len", OPT_LEN, &max_len, "N", "tokens per input including <s> and </s>; longer inputs keep <s>, "
                                            "the first N-2 and </s> (default: the folder's max_seq_length, else the model's limit)"},
        {"prompt", OPT_STR, &prompt, "query|passage", "prepend the folder's prompt of that name (default: the folder's "
                                                      "default_prompt_name, else none; without prompts in the folder \"" XLMR_QUERY_PREFIX "\" / \"" XLMR_PASSAGE_PREFIX "\")"},
        {"prefix", OPT_TEXT, &prefix, "S", "prepend S to every line (instead of --prompt)"},
        {"format", OPT_STR, &format, "text|npy|jsonl", "text: a line of floats per input (default); npy: a float32 "
                                                       "(N, C) NumPy file; jsonl: {\"index\", \"embedding\"} per line"},
        {"output", OPT_STR, &output, "FILE", "write to FILE atomically instead of stdout"},
        {"batch", OPT_COUNT, &batch, "B", "inputs per forward pass (default 32)"},
        {"ids", OPT_FLAG, &ids_mode, NULL, "lines are space-separated XLM-R ids (with <s>=0 and </s>=2), not text"},
        {"bf16", OPT_FLAG, &bf16, NULL, "BF16 matrix products (fp32 weights and accumulation): faster, ~1e-2 off"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr embed --model DIR [options] < lines",
               "Reads UTF-8 lines on stdin; writes the L2-normalised embedding of each. Pooling, length and "
               "prompts come from the folder's sentence-transformers files where it has them; flags win.",
               NULL);
    opts_require("xlmr embed", "model", dir);
    int fmt = !strcmp(format, "text") ? FMT_TEXT : !strcmp(format, "npy") ? FMT_NPY : !strcmp(format, "jsonl") ? FMT_JSONL : -1;
    if (fmt < 0) die("embed: --format must be text, npy or jsonl, not '%s'", format);
    if (batch < 1) die("embed: --batch must be positive");
    if (prompt && prefix) die("embed: give --prompt or --prefix, not both");
    if (prompt && strcmp(prompt, "query") && strcmp(prompt, "passage")) die("embed: --prompt must be query or passage");
    if (ids_mode && (prompt || prefix)) die("embed: --ids takes no --prompt or --prefix");
    StFolder sf;
    if (stfolder_read(dir, &sf) != 0) die_xerr();
    int pool = pooling ? xlmr_pooling_parse(pooling) : sf.pooling >= 0 ? sf.pooling : POOL_MEAN;
    if (pool < 0) die("embed: --pooling must be mean or cls, not '%s'", pooling);
    if (prompt && !strcmp(prompt, "query")) prefix = sf.query_prompt ? sf.query_prompt : XLMR_QUERY_PREFIX;
    if (prompt && !strcmp(prompt, "passage")) prefix = sf.passage_prompt ? sf.passage_prompt : XLMR_PASSAGE_PREFIX;
    if (!prompt && !prefix && !ids_mode) prefix = sf.default_prompt; /* as sentence-transformers' encode() */
    Xlmr m;
    if (xlmr_load(&m, sf.model_dir) != 0) die_xerr();
    m.use_bf16 = bf16;
    int limit = xlmr_max_len(&m.cfg);
    if (max_len == 0) max_len = sf.max_seq_length ? stfolder_fit_default(sf.max_seq_length, limit, "embed", "max_seq_length") : limit;
    if (max_len < 3 || max_len > limit) die("embed: --max-len %d outside [3, %d] (the model's limit)", max_len, limit);
    Tokenizer *t = NULL;
    if (!ids_mode && tokenizer_load(&t, sf.model_dir) != 0) die_xerr();
    size_t n;
    IntVec *seqs = read_inputs(t, prefix, max_len, &n); /* every line first: batches are formed by length */
    share_ids(&seqs, &n);
    const int **rows = xmalloc((n ? n : 1) * sizeof *rows);
    int *lens = xmalloc((n ? n : 1) * sizeof *lens);
    for (size_t i = 0; i < n; i++) {
        rows[i] = seqs[i].data;
        lens[i] = (int)seqs[i].n;
    }
    int C = m.cfg.hidden;
    float *out = xmalloc((n ? n : 1) * (size_t)C * sizeof(float));
    int rc = xlmr_embed_ragged(&m, out, rows, lens, (int)n, batch, pool, NULL);
    for (size_t i = 0; i < n; i++) iv_free(&seqs[i]);
    free(seqs);
    free(rows);
    free(lens);
    if (rc != 0) die_xerr();
    /* finite weights can still overflow (a huge but finite value): never print NaN as an embedding */
    for (size_t i = 0; i < n * (size_t)C; i++)
        if (!isfinite(out[i])) die("embed: line %zu: the model gives a non-finite embedding (%s)", i / C + 1, dir);
    if (dist_rank() == 0) write_embeddings(out, n, C, fmt, output); /* stdin and stdout are rank 0's */
    free(out);
    if (t) tokenizer_free(t);
    stfolder_free(&sf);
    xlmr_free(&m);
    return 0;
}
