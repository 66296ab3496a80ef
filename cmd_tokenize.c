/* cmd_tokenize.c: `xlmr tokenize` — each input line to XLM-R ids, SentencePiece
 * ids or pieces, one output line per input line (tokenizer.h does the work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenizer.h"
#include "util.h"

enum { OUT_XLMR_IDS, OUT_SPM_IDS, OUT_PIECES };

/* Appends x in decimal: printf per id would dominate the time of a big file. */
static void put_int(StrBuf *sb, int x) {
    char buf[16];
    int k = 0;
    unsigned u = x < 0 ? 0u - (unsigned)x : (unsigned)x;
    do buf[k++] = (char)('0' + u % 10), u /= 10;
    while (u);
    if (x < 0) buf[k++] = '-';
    char r[16];
    for (int i = 0; i < k; i++) r[i] = buf[k - 1 - i];
    sb_append(sb, r, (size_t)k);
}

/* Line starts of data[0..len), split on \n only (a \r stays part of the text,
 * as in spm_encode): (n + 1) entries, line i is [start[i], start[i+1] - 1). */
static size_t *line_starts(const char *data, size_t len, size_t *n) {
    size_t nlines = 0;
    for (size_t i = 0; i < len; i++) nlines += data[i] == '\n';
    if (len && data[len - 1] != '\n') nlines++;
    size_t *start = xmalloc((nlines + 1) * sizeof(size_t));
    size_t k = 0;
    start[0] = 0;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n') start[++k] = i + 1;
    if (k < nlines) start[++k] = len + 1; /* last line without \n */
    *n = nlines;
    return start;
}

/* One line's output (without the newline) into o. */
static int encode_line(const Tokenizer *t, TokScratch *s, const char *p, size_t n, int mode, int max_len,
                       IntVec *ids, StrBuf *o) {
    if (mode == OUT_PIECES) return tokenizer_encode_pieces_s(t, s, p, n, o);
    ids->n = 0;
    int rc = mode == OUT_SPM_IDS ? tokenizer_encode_spm_s(t, s, p, n, ids)
                                 : tokenizer_encode_xlmr_s(t, s, p, n, max_len, ids);
    for (size_t i = 0; i < ids->n; i++) {
        if (i) sb_append(o, " ", 1);
        put_int(o, ids->data[i]);
    }
    return rc;
}

/* Lines [b0, b0 + nb) into outs[0..nb) across threads. On failure: the first
 * failing line's index (and its message in failmsg), else -1. */
static long encode_block(const Tokenizer *t, const char *data, const size_t *start, size_t b0, int nb, int mode,
                         int max_len, StrBuf *outs, char *failmsg, size_t failmsg_size) {
    long failed = -1;
    OMP(omp parallel)
    {
        TokScratch *s = tok_scratch_new();
        IntVec ids = {0};
        OMP(omp for schedule(dynamic, 4))
        for (int j = 0; j < nb; j++) {
            size_t li = b0 + (size_t)j;
            StrBuf *o = &outs[j];
            o->len = 0;
            if (encode_line(t, s, data + start[li], start[li + 1] - 1 - start[li], mode, max_len, &ids, o)) {
                /* the message lives in this thread's error buffer: keep a copy */
                OMP(omp critical(tokenize_failed))
                if (failed < 0 || (long)li < failed) {
                    failed = (long)li;
                    snprintf(failmsg, failmsg_size, "%s", xerr_msg());
                }
            }
            sb_append(o, "\n", 1);
        }
        iv_free(&ids);
        tok_scratch_free(s);
    }
    return failed;
}

int cmd_tokenize(int argc, char **argv) {
    char *model = NULL;
    int spm_ids = 0, pieces = 0, max_len = 0;
    Opt opts[] = {
        {"model", OPT_STR, &model, "PATH", "model folder (its sentencepiece.bpe.model) or a .model file"},
        {"spm-ids", OPT_FLAG, &spm_ids, NULL, "print SentencePiece ids, as spm_encode --output_format=id"},
        {"pieces", OPT_FLAG, &pieces, NULL, "print pieces, as spm_encode --output_format=piece"},
        {"max-len", OPT_INT, &max_len, "N", "XLM-R ids: truncate to N ids, keeping </s> (default 0: no limit)"},
        {0}};
    StrList pos = {0};
    opts_parse(argc, argv, opts, "xlmr tokenize --model PATH [--spm-ids | --pieces] [--max-len N] [FILE]",
               "Tokenizes each line of FILE (default stdin; lines end at \\n) and prints one line per input line:\n"
               "by default XLM-R ids as Hugging Face's tokenizer(text)[\"input_ids\"] (<s> ... </s>).",
               &pos);
    opts_require("tokenize", "model", model);
    if (spm_ids && pieces) die("tokenize: --spm-ids and --pieces exclude each other");
    if ((spm_ids || pieces) && max_len) die("tokenize: --max-len applies to XLM-R ids only");
    if (max_len < 0 || max_len == 1) die("tokenize: --max-len must be 0 or >= 2");
    if (pos.n > 1) die("tokenize: at most one input file");
    int mode = pieces ? OUT_PIECES : spm_ids ? OUT_SPM_IDS : OUT_XLMR_IDS;
    Tokenizer *t;
    if (tokenizer_load(&t, model)) die_xerr();
    char *data;
    size_t len, nlines;
    if (pos.n == 1 ? read_file(pos.v[0], &data, &len) : read_stream(stdin, "stdin", &data, &len)) die_xerr();
    size_t bom = utf8_bom_len(data, len); /* a text's first bytes, not a character of its first line */
    if (bom) memmove(data, data + bom, (len -= bom) + 1);
    size_t *start = line_starts(data, len, &nlines);
    /* blocks bound the memory held by outputs; each is written in input order */
    const int block = 4096;
    char failmsg[512] = "";
    StrBuf *outs = xcalloc((size_t)block, sizeof(StrBuf));
    for (size_t b0 = 0; b0 < nlines; b0 += (size_t)block) {
        int nb = (int)(nlines - b0 < (size_t)block ? nlines - b0 : (size_t)block);
        long failed = encode_block(t, data, start, b0, nb, mode, max_len, outs, failmsg, sizeof failmsg);
        if (failed >= 0) die("line %ld: %s", failed + 1, failmsg);
        for (int j = 0; j < nb; j++) fwrite(outs[j].data, 1, outs[j].len, stdout);
    }
    for (int j = 0; j < block; j++) sb_free(&outs[j]);
    free(outs);
    free(start);
    free(data);
    free(pos.v);
    tokenizer_free(t);
    if (stream_flush_checked(stdout, "stdout")) die_xerr();
    return 0;
}
