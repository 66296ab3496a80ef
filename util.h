/* util.h: the small things every module needs — errors, checked allocation,
 * whole-file reads, atomic writes, a counter-based RNG, growable buffers,
 * UTF-8 validation and command-line option parsing.
 * Depends on nothing but libc. */
#ifndef XLMR_UTIL_H
#define XLMR_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* OMP(parallel for): an OpenMP pragma that vanishes in builds without OpenMP. */
#ifdef _OPENMP
#define OMP(x) _Pragma(#x)
#else
#define OMP(x)
#endif

/* ---------------------------------------------------------------------------
 * Errors. Library code never exits on bad input: it records a one-line message
 * with xerr() (which returns -1, so `return xerr(...)` reads naturally) and the
 * caller decides. The CLI prints it as "xlmr: <message>" and exits with 1.
 * Messages name the file first: "model/config.json: missing key hidden_size". */
int xerr(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
const char *xerr_msg(void);
/* Prints "xlmr: <msg>" on stderr and exits with status 1. */
void die(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;
/* die() with the last xerr() message. */
void die_xerr(void)
#if defined(__GNUC__)
    __attribute__((noreturn))
#endif
    ;

/* ---------------------------------------------------------------------------
 * Allocation. Out of memory is not bad input: these die with a clear message.
 * Sizes read from files must go through size_mul()/size_add() first. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);   /* overflow-checked */
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
int size_mul(size_t a, size_t b, size_t *out); /* 0 ok, -1 on overflow */
int size_add(size_t a, size_t b, size_t *out);

/* ---------------------------------------------------------------------------
 * Files. */
/* Reads a whole file; adds a NUL after the data (not counted in *len).
 * On failure: -1 and xerr("PATH: reason"). */
int read_file(const char *path, char **data, size_t *len);
/* The same for an open stream (stdin, a pipe) up to its end; NAME names it in messages. */
int read_stream(FILE *f, const char *name, char **data, size_t *len);
/* read_file / read_stream that stop after LIMIT bytes: a larger input (or an
 * endless one such as /dev/zero) is "PATH: larger than N MB, the limit for
 * this file", found without reading more than LIMIT + 1 bytes. Each reader
 * picks the limit of its purpose: */
#define READ_LIMIT_SMALL ((size_t)16 << 20) /* config.json, options, metadata: a few KB in practice */
#define READ_LIMIT_MODEL ((size_t)1 << 30)  /* a SentencePiece model (XLM-R's: 5 MB) */
#define READ_LIMIT_DATA ((size_t)2047 << 20) /* JSON data sets, training TSV (2 GB) */
int read_file_max(const char *path, size_t limit, char **data, size_t *len);
int read_stream_max(FILE *f, const char *name, size_t limit, char **data, size_t *len);
/* Flushes and closes f, which was written: 0, or -1 + xerr("NAME: write
 * error: REASON") when any write to it failed (ferror), the flush failed
 * (ENOSPC on /dev/full, EIO) or the close did (NFS reports errors there). */
int stream_close_checked(FILE *f, const char *name);
/* The same without closing (stdout before exit, a log kept open). */
int stream_flush_checked(FILE *f, const char *name);
/* Writes PATH atomically: PATH.tmp.PID, fwrite, fflush, fsync, rename, fsync
 * of the directory. A reader sees the old file or the new one, never half. */
int write_file_atomic(const char *path, const void *data, size_t len);
/* The same for content written piecewise with stdio. */
typedef struct {
    FILE *f;
    char *path, *tmp;
} AtomicFile;
FILE *atomic_open(AtomicFile *af, const char *path); /* NULL + xerr on failure */
int atomic_commit(AtomicFile *af);                   /* flush, fsync, rename */
void atomic_abort(AtomicFile *af);                   /* remove the temp file */
/* fsync of a directory, so a rename inside it is durable (best effort: some
 * file systems refuse). */
void fsync_dir(const char *dir);
int mkdir_p(const char *path);
int path_exists(const char *path);
int is_dir(const char *path);
/* An advisory lock on the folder DIR for the life of a run (a training or
 * an experiment writing into it): a POSIX record lock (fcntl F_SETLK) on
 * DIR/.lock, released by dir_unlock or when the process ends, however it
 * ends (a SIGKILL leaves no stale lock). A second process gets -1 and
 * "DIR: another xlmr run holds this folder (pid N)". Locks are per process
 * (POSIX record locks): the same process may lock a folder again, but the
 * first dir_unlock then releases both, so lock each folder once. On NFS the lock goes to
 * the server's lock manager (NLM or NFSv4 locks), so it holds across
 * machines when that service runs; where the file system refuses locks
 * (ENOLCK, EOPNOTSUPP) the run goes on unlocked after a warning on stderr. */
typedef struct {
    int fd; /* -1: not locked */
} DirLock;
int dir_lock(const char *dir, DirLock *l);
void dir_unlock(DirLock *l);
/* Joins a and b with '/' into a new string. */
char *path_join(const char *a, const char *b);
int copy_file(const char *src, const char *dst); /* atomic at dst */
int remove_tree(const char *path);               /* rm -r; missing is fine */
/* The files DIR/NAME whose NAME ends in suffix (hidden ones left out), as full
 * paths sorted by name, NULL-terminated (free_strv); *n gets the count. A
 * missing folder gives an empty list. */
char **list_files(const char *dir, const char *suffix, int *n);

/* ---------------------------------------------------------------------------
 * Random numbers. One 64-bit state (splitmix64): trivially saved for resume.
 * hash64() gives counter-based streams (dropout masks keyed by position) that
 * do not depend on thread count or chunking. */
typedef struct {
    uint64_t s;
} Rng;
void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
uint32_t rng_below(Rng *r, uint32_t n); /* uniform in [0,n), unbiased */
double rng_uniform(Rng *r);             /* [0,1), 53 bits */
float rng_normal(Rng *r);               /* N(0,1), Box-Muller */
uint64_t hash64(uint64_t x);            /* splitmix64 finaliser */
uint64_t hash_combine(uint64_t a, uint64_t b);
/* hash_combine over the bytes of p[0..n), starting from h (content fingerprints). */
uint64_t hash_bytes(uint64_t h, const void *p, size_t n);
/* FNV-1a over the bytes of p[0..n), continuing from h (HASH_FNV1A_BASIS to
 * start): one multiply a byte, for hash tables and for the training data's
 * fingerprint, whose value is kept in checkpoints and must not change. */
#define HASH_FNV1A_BASIS 0xcbf29ce484222325ull
uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n);

/* ---------------------------------------------------------------------------
 * Growable buffers. */
typedef struct {
    char *data;
    size_t len, cap;
} StrBuf; /* always NUL-terminated once anything was appended */
void sb_append(StrBuf *sb, const char *s, size_t n);
void sb_puts(StrBuf *sb, const char *s);
void sb_printf(StrBuf *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sb_free(StrBuf *sb);

typedef struct {
    int *data;
    size_t n, cap;
} IntVec;
void iv_push(IntVec *v, int x);
void iv_free(IntVec *v);

/* ---------------------------------------------------------------------------
 * Text. */
/* 1 when [s, s+n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int utf8_valid(const char *s, size_t n);
/* 3 when s starts with the UTF-8 byte order mark EF BB BF (which editors on
 * Windows write), else 0: text readers skip that many bytes. */
size_t utf8_bom_len(const char *s, size_t n);
/* Splits "a,b,c" into a NULL-terminated array of new strings; *n gets the count. */
char **split_csv(const char *s, int *n);
void free_strv(char **v);

double now_seconds(void); /* monotonic clock */
/* "M:SS" or "H:MM:SS" for a duration in seconds; "?" when negative, NaN or absurd. */
void fmt_duration(char *buf, size_t n, double seconds);
int num_threads(void);    /* OpenMP's thread count, or 1 without OpenMP */
size_t peak_rss_bytes(void);

/* ---------------------------------------------------------------------------
 * Command-line options: a table per command, so that parsing, validation and
 * --help come from one place.
 *   Opt opts[] = {
 *     {"model", OPT_STR, &model_dir, "DIR", "model folder (config.json, ...)"},
 *     {"batch", OPT_INT, &batch, "B", "sequences per batch (default 32)"},
 *     {0}};
 *   opts_parse(argc, argv, opts, "xlmr embed", "Embeds lines of stdin.");
 * Prints help ("usage: xlmr embed ...") and exits 0 on --help; dies with
 * "xlmr: embed: ..." on an unknown option, a missing value or a malformed
 * number (the command's name is the usage string's first word after "xlmr").
 * Positional arguments are collected in order into *positional (may be NULL
 * when none are allowed). */
/* One rule per kind of value, the same in every command; a value given on
 * the command line that breaks it is refused at parse time, naming the rule
 * ("xlmr: train: --steps must be an integer >= 1, got '0'"). Defaults are not
 * checked (0 may mean "derived" or "the model's limit"). Rules that depend on
 * other options or on the model (--max-len against the model's limit) are
 * the command's. */
typedef enum {
    OPT_STR, OPT_INT, OPT_FLOAT, OPT_FLAG, OPT_STR_LIST,
    OPT_COUNT,  /* int >= 1: steps, batch, chunk, keep, sizes */
    OPT_COUNT0, /* int >= 0: cadences where 0 means "never" */
    OPT_LEN,    /* int >= 3: tokens per sequence including <s> and </s> */
    OPT_POS,    /* number > 0: learning rate, temperature, epochs */
    OPT_PROB,   /* number in [0, 1] */
    OPT_TEXT    /* string of valid UTF-8 (prompts that end up in JSON files) */
} OptKind;
typedef struct {
    const char *name;   /* without the leading "--" */
    OptKind kind;
    void *dst;          /* char** (STR, TEXT), int* (INT, COUNT, COUNT0, LEN; FLAG: set to 1),
                           double* (FLOAT, POS, PROB), StrList* */
    const char *metavar;
    const char *help;
} Opt;
typedef struct {
    char **v;
    int n;
} StrList; /* OPT_STR_LIST: every value up to the next --option */
void opts_parse(int argc, char **argv, const Opt *opts, const char *usage,
                const char *summary, StrList *positional);
/* Dies unless value_set is non-NULL: "xlmr: CMD: --NAME is required". cmd is
 * the command's name ("embed"; "xlmr embed" is read the same). */
void opts_require(const char *cmd, const char *name, const void *value_set);

#endif
