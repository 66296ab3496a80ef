/* fuzz/fuzz_spm_model.c: the SentencePiece model (protobuf) reader,
 * tokenizer_load, on arbitrary files; a model that loads is then used to encode
 * a fixed multilingual text in all three output modes. */
#include "fuzz/fuzz_common.h"
#include "tokenizer.h"

FUZZ_TARGET(spm_model) {
    const char *path = fuzz_tmpfile("fuzz.model", data, size);
    Tokenizer *t = NULL;
    if (tokenizer_load(&t, path) != 0) {
        if (t != NULL) abort();
        return 0;
    }
    int n = tokenizer_n_pieces(t);
    if (n <= 0 || tokenizer_xlmr_vocab(t) != n + 2) abort();
    if (tokenizer_piece(t, 0) == NULL || tokenizer_piece(t, n) != NULL || tokenizer_piece(t, -1) != NULL) abort();
    static const char text[] = "Hello  world, <s> <mask> ab\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 \xe2\x80\x83x\t\n1";
    IntVec ids = {0};
    StrBuf sb = {0};
    if (tokenizer_encode_spm(t, text, sizeof text - 1, &ids) == 0)
        for (size_t i = 0; i < ids.n; i++)
            if (ids.data[i] < 0 || ids.data[i] >= n) abort();
    ids.n = 0;
    if (tokenizer_encode_xlmr(t, text, sizeof text - 1, 8, &ids) == 0) {
        if (ids.n > 8) abort();
        for (size_t i = 0; i < ids.n; i++)
            if (ids.data[i] < 0 || ids.data[i] >= n + 2) abort();
    }
    (void)tokenizer_encode_pieces(t, text, sizeof text - 1, &sb);
    iv_free(&ids);
    sb_free(&sb);
    tokenizer_free(t);
    return 0;
}
