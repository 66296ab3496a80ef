/* cmd_fillmask.c: `xlmr fill-mask` — UTF-8 lines with literal <mask> to the
 * masked-LM head's top-k predictions, one JSON line per input, with the keys
 * of HF's fill-mask pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "cli.h"
#include "json.h"
#include "tokenizer.h"
#include "util.h"
#include "xlmr.h"

/* The text HF's tokenizer.decode([id]) gives for one XLM-R id: the special
 * tokens by name, a piece with ▁ as spaces, stripped (convert_tokens_to_string). */
static void token_str(StrBuf *out, const Tokenizer *t, int id, int mask_id) {
    static const char *special[4] = {"<s>", "<pad>", "</s>", "<unk>"};
    out->len = 0;
    sb_append(out, "", 0);
    const char *p = id < 4 ? special[id] : id == mask_id ? "<mask>" : tokenizer_piece(t, id - 1);
    if (!p) p = "";
    for (const char *s = p; *s;) {
        if (!strncmp(s, "\xE2\x96\x81", 3)) { /* U+2581 ▁ */
            sb_append(out, " ", 1);
            s += 3;
        } else {
            sb_append(out, s++, 1);
        }
    }
    size_t a = 0, b = out->len;
    while (a < b && out->data[a] == ' ') a++;
    while (b > a && out->data[b - 1] == ' ') b--;
    memmove(out->data, out->data + a, b - a);
    out->len = b - a;
    out->data[out->len] = 0;
}

/* top (k) = the ids of the k largest of row (V), highest first, ties to the
 * lower id (a partial selection: k is small). */
static void top_k(int *top, const float *row, int V, int k) {
    for (int i = 0; i < k; i++) top[i] = -1;
    for (int v = 0; v < V; v++) {
        int j = k;
        while (j > 0 && (top[j - 1] < 0 || row[v] > row[top[j - 1]])) j--;
        if (j == k) continue;
        memmove(top + j + 1, top + j, (size_t)(k - j - 1) * sizeof(int));
        top[j] = v;
    }
}

/* Appends one input's predictions: a list over its masks of top-k lists. */
static void write_predictions(StrBuf *sb, const Tokenizer *t, const float *logits, int M, int V, int k,
                              int mask_id) {
    int *top = xmalloc((size_t)k * sizeof(int));
    float *prob = xmalloc((size_t)V * sizeof(float));
    StrBuf s = {0};
    sb_puts(sb, "[");
    for (int i = 0; i < M; i++) {
        const float *row = logits + (size_t)i * V;
        double mx = row[0], sum = 0;
        for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        for (int v = 0; v < V; v++) sum += exp((double)row[v] - mx);
        for (int v = 0; v < V; v++) prob[v] = (float)(exp((double)row[v] - mx) / sum);
        top_k(top, row, V, k);
        sb_puts(sb, i ? ", [" : "[");
        for (int j = 0; j < k; j++) {
            token_str(&s, t, top[j], mask_id);
            sb_printf(sb, "%s{\"token\": %d, \"token_str\": ", j ? ", " : "", top[j]);
            sb_json_string(sb, s.data);
            sb_printf(sb, ", \"score\": %.8g}", (double)prob[top[j]]);
        }
        sb_puts(sb, "]");
    }
    sb_puts(sb, "]\n");
    sb_free(&s);
    free(prob);
    free(top);
}

int cmd_fillmask(int argc, char **argv) {
    char *dir = NULL;
    int top = 5, max_len = 0;
    Opt opts[] = {
        {"model", OPT_STR, &dir, "DIR", "model folder with a masked-LM head (lm_head.*) and sentencepiece.bpe.model"},
        {"top-k", OPT_INT, &top, "K", "predictions per mask (default 5)"},
        {"max-len", OPT_INT, &max_len, "N", "tokens per input including <s> and </s>; longer inputs keep <s>, "
                                            "the first N-2 and </s> (default: the model's limit)"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr fill-mask --model DIR [options] < lines",
               "Reads UTF-8 lines holding literal <mask> tokens (the space to a <mask>'s left is dropped, as HF's "
               "tokenizer does); writes one JSON line per input: for each mask, in order, the top-k "
               "{\"token\", \"token_str\", \"score\"} (HF's fill-mask pipeline keys), highest first. An input "
               "without a mask (or whose masks were truncated away) gives [].",
               NULL);
    opts_require("xlmr fill-mask", "model", dir);
    Xlmr m;
    if (xlmr_load(&m, dir) != 0) die_xerr();
    if (!m.cfg.mlm_head)
        die("fill-mask: %s has no masked-LM head (no lm_head.dense.weight in model.safetensors): an encoder-only "
            "folder cannot predict tokens; use an XLMRobertaForMaskedLM folder or one written by xlmr pretrain", dir);
    int limit = xlmr_max_len(&m.cfg), V = m.cfg.vocab;
    if (max_len == 0) max_len = limit;
    if (max_len < 2 || max_len > limit) die("fill-mask: --max-len %d outside [2, %d] (the model's limit)", max_len, limit);
    if (top < 1 || top > V) die("fill-mask: --top-k must be in [1, %d] (the vocabulary)", V);
    Tokenizer *t;
    if (tokenizer_load(&t, dir) != 0) die_xerr();
    int mask_id = tokenizer_xlmr_vocab(t) - 1;
    if (tokenizer_xlmr_vocab(t) != V)
        die("fill-mask: %s: the tokenizer's vocabulary (%d) differs from the model's vocab_size (%d)", dir,
            tokenizer_xlmr_vocab(t), V);
    XlmrActs *a = xlmr_acts_build(&m, 1, max_len);
    XlmrMlmActs *h = xlmr_mlm_acts_build(&m, max_len);
    float *logits = xmalloc((size_t)max_len * V * sizeof(float));
    int *pos = xmalloc((size_t)max_len * sizeof(int));
    IntVec ids = {0};
    StrBuf sb = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (tokenizer_encode_xlmr(t, line, len, max_len, &ids) != 0) die("fill-mask: %s", xerr_msg());
        int M = 0;
        for (size_t i = 0; i < ids.n; i++)
            if (ids.data[i] == mask_id) pos[M++] = (int)i;
        sb.len = 0;
        if (M == 0) {
            sb_puts(&sb, "[]\n");
        } else {
            xlmr_forward(&m, a, NULL, ids.data, 1, (int)ids.n, POOL_MEAN, NULL);
            if (xlmr_mlm_forward(&m, a, h, logits, pos, M) != 0) die_xerr();
            write_predictions(&sb, t, logits, M, V, top, mask_id);
        }
        fwrite(sb.data, 1, sb.len, stdout);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) die("fill-mask: writing stdout failed");
    free(line);
    sb_free(&sb);
    iv_free(&ids);
    free(pos);
    free(logits);
    xlmr_mlm_acts_free(h);
    xlmr_acts_free(a);
    tokenizer_free(t);
    xlmr_free(&m);
    return 0;
}
