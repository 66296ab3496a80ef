/* fuzz/fuzz_tokenize.c: the tokenizer on arbitrary bytes (invalid UTF-8, NULs,
 * control characters, special-token look-alikes) against a fixed model:
 * $XLMR_FUZZ_MODEL, else tokenizer/xlmrc.model, else the committed test models.
 * The first byte picks the max_len of the XLM-R encoding. */
#include "fuzz/fuzz_common.h"
#include "tokenizer.h"

static Tokenizer *fuzz_tok_model_(void) {
    static Tokenizer *t;
    static int tried;
    if (!tried) {
        tried = 1;
        const char *cands[] = {getenv("XLMR_FUZZ_MODEL"), "tokenizer/xlmrc.model", "tests/fixtures/tokenizer/bf.model",
                               "tests/fixtures/tokenizer/ws.model",
                               "/work/shared/data/spm-fixtures/botchan-en.model"};
        for (size_t i = 0; i < sizeof cands / sizeof cands[0] && !t; i++)
            if (cands[i] && *cands[i] && path_exists(cands[i]) && tokenizer_load(&t, cands[i]) != 0) t = NULL;
        if (!t) {
            fprintf(stderr, "fuzz_tokenize: no SentencePiece model (set XLMR_FUZZ_MODEL or run from the repository root)\n");
            abort();
        }
    }
    return t;
}

FUZZ_TARGET(tokenize) {
    Tokenizer *t = fuzz_tok_model_();
    int n = tokenizer_n_pieces(t);
    int max_len = size ? (int)(data[0] % 40) : 0; /* 0: no limit; 2..39 (1 is refused) */
    if (max_len == 1) max_len = 2;
    const char *text = (const char *)data;
    IntVec ids = {0};
    StrBuf sb = {0};
    if (tokenizer_encode_spm(t, text, size, &ids) != 0) abort(); /* arbitrary bytes are not an error */
    for (size_t i = 0; i < ids.n; i++)
        if (ids.data[i] < 0 || ids.data[i] >= n) abort();
    if (tokenizer_encode_xlmr(t, text, size, max_len, &ids) != 0) abort();
    if (ids.n < 2 || ids.data[0] != 0 || ids.data[ids.n - 1] != 2) abort(); /* <s> ... </s> */
    if (max_len >= 2 && ids.n > (size_t)max_len) abort();
    for (size_t i = 0; i < ids.n; i++)
        if (ids.data[i] < 0 || ids.data[i] >= n + 2) abort();
    if (tokenizer_encode_pieces(t, text, size, &sb) != 0) abort();
    /* the batch entry point agrees with the single one */
    IntVec outs[2] = {{0}, {0}};
    const char *texts[2] = {text, text};
    size_t lens[2] = {size, size / 2};
    if (tokenizer_encode_batch(t, texts, lens, 2, TOK_XLMR, max_len, outs) != 0) abort();
    if (outs[0].n != ids.n || (ids.n && memcmp(outs[0].data, ids.data, ids.n * sizeof(int)) != 0)) abort();
    iv_free(&outs[0]);
    iv_free(&outs[1]);
    iv_free(&ids);
    sb_free(&sb);
    return 0;
}
