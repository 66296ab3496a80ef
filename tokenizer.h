/* tokenizer.h: SentencePiece unigram models (.model protobuf files) read and
 * applied exactly as SentencePiece does, plus Hugging Face XLM-R id mapping.
 * Stands alone (util.h only). A loaded Tokenizer is immutable: encoding is
 * thread-safe. */
#ifndef XLMR_TOKENIZER_H
#define XLMR_TOKENIZER_H

#include <stddef.h>
#include "util.h"

typedef struct Tokenizer Tokenizer;

/* path: a .model file, or a model folder holding sentencepiece.bpe.model.
 * -1 + xerr("PATH: what is wrong") on a bad file. */
int tokenizer_load(Tokenizer **out, const char *path);
void tokenizer_free(Tokenizer *t);
/* The .model file of path: path itself, or DIR/sentencepiece.bpe.model for a folder (malloc'd). */
char *tokenizer_model_path(const char *path);
int tokenizer_n_pieces(const Tokenizer *t);   /* SentencePiece pieces */
int tokenizer_xlmr_vocab(const Tokenizer *t); /* vocab_size of a matching XLM-R: n_pieces + 2 (ids 0..n_pieces+1, <mask> last) */
/* The piece string of SentencePiece id (NULL when out of range). */
const char *tokenizer_piece(const Tokenizer *t, int id);

/* SentencePiece ids of text[0..len) (no BOS/EOS), as spm_encode --output_format=id. Appends to out. */
int tokenizer_encode_spm(const Tokenizer *t, const char *text, size_t len, IntVec *out);
/* Pieces, as spm_encode --output_format=piece: appends each piece, space-separated, to out. */
int tokenizer_encode_pieces(const Tokenizer *t, const char *text, size_t len, StrBuf *out);
/* XLM-R ids as HF's tokenizer(text)["input_ids"]: <s>=0 ... </s>=2, pieces spm id+1,
 * <unk>=3, literal special tokens handled as HF does. max_len > 0 truncates to
 * <s>, first max_len-2 ids, </s>. Replaces the content of out. */
int tokenizer_encode_xlmr(const Tokenizer *t, const char *text, size_t len, int max_len, IntVec *out);

/* ---------------------------------------------------------------------------
 * Allocation-free encoding for hot loops. A TokScratch holds the buffers one
 * encoding needs (normalised text, Viterbi lattice); reuse one per thread. The
 * functions above are these with a scratch made and freed per call. */
typedef struct TokScratch TokScratch;
TokScratch *tok_scratch_new(void);
void tok_scratch_free(TokScratch *s);
int tokenizer_encode_spm_s(const Tokenizer *t, TokScratch *s, const char *text, size_t len, IntVec *out);
int tokenizer_encode_pieces_s(const Tokenizer *t, TokScratch *s, const char *text, size_t len, StrBuf *out);
int tokenizer_encode_xlmr_s(const Tokenizer *t, TokScratch *s, const char *text, size_t len, int max_len,
                            IntVec *out);

/* Encodes n texts across OpenMP threads into outs[0..n) (each replaced).
 * mode TOK_XLMR: as tokenizer_encode_xlmr (with max_len); TOK_SPM: as
 * tokenizer_encode_spm. -1 + xerr on bad arguments. */
enum { TOK_XLMR = 0, TOK_SPM = 1 };
int tokenizer_encode_batch(const Tokenizer *t, const char *const *texts, const size_t *lens, int n, int mode,
                           int max_len, IntVec *outs);

#endif
