/* util.c: see util.h. Everything here is plain libc/POSIX; the few choices
 * that matter for the rest of the program are noted where they are made. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------------- */
/* Errors                                                                    */

/* One message per thread: encoding runs in parallel, and a failing thread's
 * message must not be overwritten by another's before the caller copies it. */
#ifdef _OPENMP
static char err_buf[1024];
#pragma omp threadprivate(err_buf)
#else
static char err_buf[1024];
#endif

int xerr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    /* one line, always: the CLI's contract is one stderr line per error, and a
     * message may quote text from a file */
    for (char *p = err_buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return -1;
}

const char *xerr_msg(void) { return err_buf[0] ? err_buf : "unknown error"; }

void die(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fflush(stdout); /* what was printed so far comes out before the message */
    fprintf(stderr, "xlmr: %s\n", msg);
    exit(1);
}

void die_xerr(void) { die("%s", xerr_msg()); }

/* ------------------------------------------------------------------------- */
/* Allocation                                                                */

/* n ? n : 1: malloc(0) may return NULL, which must not read as out of memory. */
void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (allocating %zu bytes)", n);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    size_t n;
    if (size_mul(count, size, &n)) die("allocation size overflows (%zu x %zu)", count, size);
    void *p = calloc(n ? n : 1, 1);
    if (!p) die("out of memory (allocating %zu bytes)", n);
    return p;
}

void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) die("out of memory (allocating %zu bytes)", n);
    return q;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

char *xstrndup(const char *s, size_t n) {
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Checked before multiplying, never after: an overflowed product is a small,
 * valid-looking size, and a file could choose it. */
int size_mul(size_t a, size_t b, size_t *out) {
    if (a && b > (size_t)-1 / a) return -1;
    *out = a * b;
    return 0;
}

int size_add(size_t a, size_t b, size_t *out) {
    if (b > (size_t)-1 - a) return -1;
    *out = a + b;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Files                                                                     */

int read_stream_max(FILE *f, const char *name, size_t limit, char **data, size_t *len) {
    /* doubling keeps the copies linear in the size; pipes have no size to ask for */
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n > limit) {
            free(buf);
            return xerr("%s: larger than %zu MB, the limit for this file", name, limit >> 20);
        }
        if (n == cap) {
            if (cap > ((size_t)-1) / 4) {
                free(buf);
                return xerr("%s: file too large", name);
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
        /* never more than limit + 1 bytes: enough to tell "over the limit" */
        size_t want = cap - n, room = limit - n + 1;
        size_t got = fread(buf + n, 1, want < room ? want : room, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        return xerr("%s: read error: %s", name, strerror(e));
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

int read_stream(FILE *f, const char *name, char **data, size_t *len) {
    return read_stream_max(f, name, (size_t)-1 - 1, data, len);
}

int read_file_max(const char *path, size_t limit, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return xerr("%s: cannot open: %s", path, strerror(errno));
    int rc = read_stream_max(f, path, limit, data, len);
    fclose(f);
    return rc;
}

int read_file(const char *path, char **data, size_t *len) { return read_file_max(path, (size_t)-1 - 1, data, len); }

int stream_flush_checked(FILE *f, const char *name) {
    errno = 0;
    if (fflush(f) != 0 || ferror(f)) {
        /* errno is the flush's; a write that failed earlier may have left none */
        return xerr("%s: write error: %s", name, errno ? strerror(errno) : "an earlier write failed");
    }
    return 0;
}

int stream_close_checked(FILE *f, const char *name) {
    int rc = stream_flush_checked(f, name);
    if (fclose(f) != 0 && rc == 0) rc = xerr("%s: write error: %s", name, strerror(errno));
    return rc;
}

/* A rename is durable only once the directory holding it is synced. */
void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return;
    fsync(fd);
    close(fd);
}

static void fsync_dir_of(const char *path) {
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        if (slash == dir) slash[1] = 0; else *slash = 0;
    } else {
        strcpy(dir, ".");
    }
    fsync_dir(dir);
    free(dir);
}

/* The temporary file sits next to PATH, so the rename stays inside one file
 * system (and is atomic); the PID keeps two processes from sharing it. */
FILE *atomic_open(AtomicFile *af, const char *path) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s.tmp.%ld", path, (long)getpid());
    af->path = xstrdup(path);
    af->tmp = sb.data;
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        xerr("%s: cannot write: %s", af->tmp, strerror(errno));
        free(af->path);
        free(af->tmp);
        af->path = af->tmp = NULL;
        return NULL;
    }
    return af->f;
}

/* Data first (fflush, fsync), then the rename: a crash leaves the old file or
 * the complete new one, never a renamed half-written one. */
int atomic_commit(AtomicFile *af) {
    int rc = 0;
    if (fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0)
        rc = xerr("%s: write failed: %s", af->tmp, strerror(errno));
    if (fclose(af->f) != 0 && rc == 0) rc = xerr("%s: close failed: %s", af->tmp, strerror(errno));
    af->f = NULL;
    if (rc == 0 && rename(af->tmp, af->path) != 0)
        rc = xerr("%s: cannot rename into place: %s", af->path, strerror(errno));
    if (rc != 0) remove(af->tmp);
    else fsync_dir_of(af->path);
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    return rc;
}

void atomic_abort(AtomicFile *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) remove(af->tmp);
    free(af->path);
    free(af->tmp);
    af->f = NULL;
    af->path = af->tmp = NULL;
}

int write_file_atomic(const char *path, const void *data, size_t len) {
    AtomicFile af;
    FILE *f = atomic_open(&af, path);
    if (!f) return -1;
    if (len && fwrite(data, 1, len, f) != len) {
        xerr("%s: write failed: %s", af.tmp, strerror(errno));
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af);
}

/* Each prefix in turn; EEXIST is fine (it exists, or another process made it
 * first), but the end must be a directory. */
int mkdir_p(const char *path) {
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            xerr("%s: cannot create directory: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        rc = xerr("%s: cannot create directory: %s", p, strerror(errno));
    else if (!is_dir(p))
        rc = xerr("%s: exists and is not a directory", p);
    free(p);
    return rc;
}

int dir_lock(const char *dir, DirLock *l) {
    char *path = path_join(dir, ".lock");
    l->fd = open(path, O_RDWR | O_CREAT, 0666);
    if (l->fd < 0) {
        xerr("%s: cannot create the lock file: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
    int rc = 0;
    if (fcntl(l->fd, F_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN) {
            struct flock who = fl;
            long pid = fcntl(l->fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (long)who.l_pid : 0;
            if (pid > 0) rc = xerr("%s: another xlmr run holds this folder (pid %ld)", dir, pid);
            else rc = xerr("%s: another xlmr run holds this folder", dir);
        } else if (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) {
            fflush(stdout);
            fprintf(stderr, "xlmr: warning: %s: the file system refuses locks (%s): nothing stops a second run "
                            "from writing into this folder\n", path, strerror(e));
        } else {
            rc = xerr("%s: cannot lock: %s", path, strerror(e));
        }
        close(l->fd);
        l->fd = -1;
    }
    free(path);
    return rc;
}

void dir_unlock(DirLock *l) {
    if (l->fd >= 0) close(l->fd); /* closing releases the lock */
    l->fd = -1;
}

int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *path_join(const char *a, const char *b) {
    StrBuf sb = {0};
    size_t la = strlen(a);
    sb_printf(&sb, "%s%s%s", a, (la && a[la - 1] == '/') ? "" : "/", b);
    return sb.data;
}

int copy_file(const char *src, const char *dst) {
    char *data;
    size_t len;
    if (read_file(src, &data, &len)) return -1;
    int rc = write_file_atomic(dst, data, len);
    free(data);
    return rc;
}

int remove_tree(const char *path) {
    struct stat st; /* lstat: a symbolic link is removed, never followed */
    if (lstat(path, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return xerr("%s: cannot open directory: %s", path, strerror(errno));
        struct dirent *e;
        int rc = 0;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *sub = path_join(path, e->d_name);
            if (remove_tree(sub)) rc = -1;
            free(sub);
        }
        closedir(d);
        if (rc) return rc;
        if (rmdir(path) != 0) return xerr("%s: cannot remove: %s", path, strerror(errno));
        return 0;
    }
    if (unlink(path) != 0) return xerr("%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted, because readdir's order depends on the file system and the callers'
 * results (e.g. a folder of data files) must not. */
char **list_files(const char *dir, const char *suffix, int *n) {
    size_t ls = strlen(suffix);
    char **v = xcalloc(1, sizeof(char *));
    *n = 0;
    DIR *dd = opendir(dir);
    if (!dd) return v;
    struct dirent *e;
    while ((e = readdir(dd))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= ls || strcmp(e->d_name + l - ls, suffix) != 0) continue;
        v = xrealloc(v, (size_t)(*n + 2) * sizeof(char *));
        v[(*n)++] = path_join(dir, e->d_name);
        v[*n] = NULL;
    }
    closedir(dd);
    qsort(v, (size_t)*n, sizeof(char *), cmp_cstr);
    return v;
}

/* ------------------------------------------------------------------------- */
/* Random numbers                                                            */

/* splitmix64's finaliser: every input bit affects every output bit, so
 * consecutive counters (positions, steps) give independent-looking values. */
uint64_t hash64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* b is hashed before it meets a, so the order matters: combine(a, b) != combine(b, a). */
uint64_t hash_combine(uint64_t a, uint64_t b) { return hash64(a ^ hash64(b)); }

uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = hash_combine(h, s[i]);
    return h;
}

uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

void rng_seed(Rng *r, uint64_t seed) { r->s = seed; }

/* splitmix64: a Weyl sequence through the finaliser. The whole state is one
 * word, which is what makes saving it for resume trivial. */
uint64_t rng_u64(Rng *r) {
    r->s += 0x9E3779B97F4A7C15ull;
    uint64_t x = r->s;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint32_t rng_below(Rng *r, uint32_t n) {
    if (n <= 1) return 0;
    /* rejection sampling on the top 32 bits keeps every value equally likely */
    uint32_t limit = (uint32_t)(0x100000000ull - (0x100000000ull % n));
    for (;;) {
        uint32_t x = (uint32_t)(rng_u64(r) >> 32);
        if (limit == 0 || x < limit) return x % n;
    }
}

/* The top 53 bits, exactly the precision of a double. */
double rng_uniform(Rng *r) { return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

float rng_normal(Rng *r) {
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300; /* log(0) */
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ------------------------------------------------------------------------- */
/* Buffers                                                                   */

/* Capacity doubles, so n appends cost O(total length). */
void sb_append(StrBuf *sb, const char *s, size_t n) {
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap < sb->len + n + 1) cap *= 2;
        sb->data = xrealloc(sb->data, cap);
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

void sb_puts(StrBuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

/* Most appends are short: one vsnprintf into a stack buffer, and a second,
 * sized pass only for long ones. */
void sb_printf(StrBuf *sb, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sb_append(sb, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_append(sb, big, (size_t)n);
    free(big);
}

void sb_free(StrBuf *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

void iv_push(IntVec *v, int x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->data = xrealloc(v->data, v->cap * sizeof(int));
    }
    v->data[v->n++] = x;
}

void iv_free(IntVec *v) {
    free(v->data);
    v->data = NULL;
    v->n = v->cap = 0;
}

/* ------------------------------------------------------------------------- */
/* Text                                                                      */

/* The lead byte gives the length (C0, C1 and F5..FF never occur); then the
 * decoded value must need that length (no overlong forms), lie outside the
 * surrogates and not pass U+10FFFF: RFC 3629, the rule JSON and the tokenizer need. */
int utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
        i += len;
    }
    return 1;
}

size_t utf8_bom_len(const char *s, size_t n) {
    return n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF ? 3 : 0;
}

/* Empty items ("a,,b", a trailing comma) are dropped, so "--langs en," means en. */
char **split_csv(const char *s, int *n) {
    int count = 1;
    for (const char *p = s; *p; p++) count += *p == ',';
    char **v = xcalloc((size_t)count + 1, sizeof(char *));
    int k = 0;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == ',' || *p == 0) {
            if (p > start) v[k++] = xstrndup(start, (size_t)(p - start));
            if (*p == 0) break;
            start = p + 1;
        }
    }
    v[k] = NULL;
    *n = k;
    return v;
}

void free_strv(char **v) {
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rounded to the second; absurd values (a rate not measured yet) print as "?"
 * rather than as a huge number. */
void fmt_duration(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

int num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

size_t peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

/* ------------------------------------------------------------------------- */
/* Options                                                                   */

static void opts_help(const Opt *opts, const char *usage, const char *summary) {
    /* usage strings that spell out their options already need no "[options]" */
    printf("usage: %s%s\n\n%s\n\noptions:\n", usage, strstr(usage, "[options]") ? "" : " [options]", summary);
    for (const Opt *o = opts; o->name; o++) {
        char left[64];
        if (o->kind == OPT_FLAG) snprintf(left, sizeof left, "--%s", o->name);
        else snprintf(left, sizeof left, "--%s %s", o->name, o->metavar ? o->metavar : "X");
        printf("  %-26s %s\n", left, o->help ? o->help : "");
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

/* The whole string must be the number: "12abc" or "" is an error, not 12 or 0. */
static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -2147483647L || v > 2147483647L) return -1;
    *out = (int)v;
    return 0;
}

/* As parse_int; inf and nan are refused, no option wants them. */
static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* The command's name from a usage string or a name: "xlmr train --model DIR"
 * and "train" both give "train". Messages then read "xlmr: train: ...", the
 * one prefix die() adds being the program's. */
static void command_name(const char *usage, char *buf, size_t n) {
    if (!strncmp(usage, "xlmr ", 5)) usage += 5;
    size_t len = strcspn(usage, " ");
    snprintf(buf, n, "%.*s", (int)len, usage);
}

/* One value of option o, checked against the rule of its kind (util.h). */
static void opt_set(const char *cmd, const Opt *o, const char *val) {
    static const struct {
        OptKind kind;
        double lo, hi;
        const char *rule;
    } rules[] = {
        {OPT_COUNT, 1, 2147483647.0, "an integer >= 1"},
        {OPT_COUNT0, 0, 2147483647.0, "an integer >= 0"},
        {OPT_LEN, 3, 2147483647.0, "an integer >= 3 (<s>, a token, </s>)"},
        {OPT_POS, 0, HUGE_VAL, "a number > 0"},
        {OPT_PROB, 0, 1, "a number in [0, 1]"},
    };
    int iv;
    double dv;
    switch (o->kind) {
    case OPT_STR: *(const char **)o->dst = val; return;
    case OPT_TEXT:
        if (!utf8_valid(val, strlen(val))) die("%s: --%s must be valid UTF-8 text", cmd, o->name);
        *(const char **)o->dst = val;
        return;
    case OPT_INT: case OPT_COUNT: case OPT_COUNT0: case OPT_LEN:
        if (parse_int(val, &iv)) die("%s: --%s expects an integer, got '%s'", cmd, o->name, val);
        dv = iv;
        *(int *)o->dst = iv;
        break;
    case OPT_FLOAT: case OPT_POS: case OPT_PROB:
        if (parse_double(val, &dv)) die("%s: --%s expects a number, got '%s'", cmd, o->name, val);
        *(double *)o->dst = dv;
        break;
    default: return;
    }
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++)
        if (rules[k].kind == o->kind && !(dv >= rules[k].lo && dv <= rules[k].hi && (o->kind != OPT_POS || dv > 0)))
            die("%s: --%s must be %s, got '%s'", cmd, o->name, rules[k].rule, val);
}

void opts_parse(int argc, char **argv, const Opt *opts, const char *usage,
                const char *summary, StrList *positional) {
    char cmd[64];
    command_name(usage, cmd, sizeof cmd);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            opts_help(opts, usage, summary);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            if (!positional) die("%s: unexpected argument '%s' (see --help)", cmd, a);
            positional->v = xrealloc(positional->v, (size_t)(positional->n + 2) * sizeof(char *));
            positional->v[positional->n++] = argv[i];
            positional->v[positional->n] = NULL;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const Opt *o = opts;
        for (; o->name; o++)
            if (strlen(o->name) == nlen && !strncmp(o->name, name, nlen)) break;
        if (!o->name) die("%s: unknown option '%s' (see --help)", cmd, a);
        if (o->kind == OPT_FLAG) {
            if (eq) die("%s: option --%s takes no value", cmd, o->name);
            *(int *)o->dst = 1;
            continue;
        }
        /* a list takes every following argument up to the next --option */
        if (o->kind == OPT_STR_LIST) {
            StrList *l = o->dst;
            int start = i + 1;
            if (eq) {
                l->v = xrealloc(l->v, (size_t)(l->n + 2) * sizeof(char *));
                l->v[l->n++] = (char *)(eq + 1);
                l->v[l->n] = NULL;
            }
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                i++;
                l->v = xrealloc(l->v, (size_t)(l->n + 2) * sizeof(char *));
                l->v[l->n++] = argv[i];
                l->v[l->n] = NULL;
            }
            if (!eq && i + 1 == start) die("%s: option --%s needs at least one value", cmd, o->name);
            continue;
        }
        const char *val;
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else die("%s: option --%s needs a value (%s)", cmd, o->name, o->metavar ? o->metavar : "X");
        opt_set(cmd, o, val);
    }
}

void opts_require(const char *cmd, const char *name, const void *value_set) {
    char c[64];
    command_name(cmd, c, sizeof c);
    if (!value_set) die("%s: --%s is required (see --help)", c, name);
}
