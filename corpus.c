/* corpus.c: see corpus.h. */
#include "corpus.h"

#include <stdlib.h>
#include <string.h>

#include "squad.h"
#include "strmap.h"
#include "util.h"

enum { MAX_LANGS = 32 };

typedef struct {
    char names[MAX_LANGS][16];
    StrBuf text[MAX_LANGS];
    long long docs[MAX_LANGS];
    int n;
    StrBuf par;       /* parallel.tsv */
    long long n_par;
} Corpus;

static int lang_index(Corpus *c, const char *lang) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], lang)) return i;
    if (c->n == MAX_LANGS || strlen(lang) >= 16) return xerr("corpus: too many languages or a long name '%s'", lang);
    snprintf(c->names[c->n], 16, "%s", lang);
    return c->n++;
}

/* Appends s[0..n) with tabs, newlines and carriage returns as spaces, trimmed. */
static void append_flat(StrBuf *sb, const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i] == '\n' || s[i] == '\t' || s[i] == '\r' ? ' ' : s[i];
        sb_append(sb, &ch, 1);
    }
}

/* A document of one or more lines: lines[0..n) become its lines. */
static int add_doc(Corpus *c, const char *lang, const char *const *lines, const size_t *lens, int n) {
    int l = lang_index(c, lang);
    if (l < 0) return -1;
    StrBuf *sb = &c->text[l];
    size_t before = sb->len;
    for (int i = 0; i < n; i++) {
        size_t at = sb->len;
        append_flat(sb, lines[i], lens[i]);
        if (sb->len > at) sb_puts(sb, "\n");
    }
    if (sb->len > before) {
        sb_puts(sb, "\n"); /* the blank line that ends a document */
        c->docs[l]++;
    }
    return 0;
}

static void add_par(Corpus *c, const char *group, const char *lang, const char *s, size_t n) {
    size_t at = c->par.len;
    sb_printf(&c->par, "%s\t%s\t", group, lang);
    size_t text = c->par.len;
    append_flat(&c->par, s, n);
    if (c->par.len == text) c->par.len = at; /* an empty text: no row */
    else sb_puts(&c->par, "\n"), c->n_par++;
    if (c->par.data) c->par.data[c->par.len] = 0;
}

/* Every paragraph of a SQuAD-format source as a document of its language. */
static int add_squad(Corpus *c, const char *dataset, const char *path, const char *lang, int split) {
    SquadData d;
    if (squad_load(&d, dataset, path, NULL, 0, lang, split)) return -1;
    int rc = 0;
    for (int i = 0; i < d.n_paras && rc == 0; i++) {
        const char *ctx = d.paras[i].context;
        size_t len = strlen(ctx);
        rc = add_doc(c, d.langs[d.paras[i].lang], &ctx, &len, 1);
    }
    squad_free(&d);
    return rc;
}

/* The lines of a text file (\n-separated, \r stripped) into *lines (pointers into *data). */
static int read_lines(const char *path, char **data, const char ***lines, size_t **lens, int *n) {
    size_t len;
    if (read_file(path, data, &len)) return -1;
    if (!utf8_valid(*data, len)) return xerr("%s: not valid UTF-8", path);
    int cap = 0;
    *n = 0;
    *lines = NULL;
    *lens = NULL;
    for (char *p = *data; p < *data + len;) {
        char *nl = memchr(p, '\n', (size_t)(*data + len - p)), *end = nl ? nl : *data + len;
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            *lines = xrealloc(*lines, (size_t)cap * sizeof **lines);
            *lens = xrealloc(*lens, (size_t)cap * sizeof **lens);
        }
        (*lines)[*n] = p;
        (*lens)[(*n)++] = (size_t)(end - p) - (end > p && end[-1] == '\r');
        p = nl ? nl + 1 : *data + len;
    }
    return 0;
}

/* NTREX: each language file's lines grouped by DOCUMENT_IDS.tsv into
 * documents; line k in every language is parallel group "ntrex:k". */
static int add_ntrex(Corpus *c, const char *dir) {
    char *ids_path = path_join(dir, "DOCUMENT_IDS.tsv"), *idata = NULL;
    const char **doc_id;
    size_t *doc_len;
    int n_ids, rc = read_lines(ids_path, &idata, &doc_id, &doc_len, &n_ids);
    int n_files = 0;
    char **files = rc == 0 ? list_files(dir, ".txt", &n_files) : NULL;
    for (int f = 0; f < n_files && rc == 0; f++) {
        const char *base = strrchr(files[f], '/') ? strrchr(files[f], '/') + 1 : files[f];
        char lang[16];
        snprintf(lang, sizeof lang, "%.*s", (int)(strlen(base) - 4), base);
        char *data = NULL;
        const char **lines = NULL;
        size_t *lens = NULL;
        int n;
        rc = read_lines(files[f], &data, &lines, &lens, &n);
        if (rc == 0 && n != n_ids) rc = xerr("%s: %d lines, DOCUMENT_IDS.tsv has %d", files[f], n, n_ids);
        for (int i = 0; i < n && rc == 0;) {
            int j = i;
            while (j < n && doc_len[j] == doc_len[i] && !memcmp(doc_id[j], doc_id[i], doc_len[i])) j++;
            rc = add_doc(c, lang, lines + i, lens + i, j - i);
            i = j;
        }
        for (int i = 0; i < n && rc == 0; i++) {
            char g[32];
            snprintf(g, sizeof g, "ntrex:%d", i);
            add_par(c, g, lang, lines[i], lens[i]);
        }
        free(data);
        free(lines);
        free(lens);
    }
    if (files) free_strv(files);
    free(idata);
    free(doc_id);
    free(doc_len);
    free(ids_path);
    return rc;
}

/* Tatoeba LANG-en.tsv: sentence<TAB>english. Documents of 20 sentences; the
 * English sides once each (they repeat across files); each pair a group. */
static int add_tatoeba(Corpus *c, const char *dir) {
    int n_files = 0, rc = 0;
    char **files = list_files(dir, "-en.tsv", &n_files);
    StrMap seen = {0};
    char **keep = NULL;
    int n_keep = 0;
    for (int f = 0; f < n_files && rc == 0; f++) {
        const char *base = strrchr(files[f], '/') ? strrchr(files[f], '/') + 1 : files[f];
        char lang[16];
        snprintf(lang, sizeof lang, "%.*s", (int)(strlen(base) - 7), base);
        char *data = NULL;
        const char **lines = NULL, *side[2][20];
        size_t *lens = NULL, slen[2][20];
        int n, ns[2] = {0, 0};
        rc = read_lines(files[f], &data, &lines, &lens, &n);
        for (int i = 0; i < n && rc == 0; i++) {
            const char *tab = memchr(lines[i], '\t', lens[i]);
            if (!lens[i]) continue;
            if (!tab) {
                rc = xerr("%s:%d: expected sentence<TAB>english", files[f], i + 1);
                break;
            }
            size_t la = (size_t)(tab - lines[i]), lb = lens[i] - la - 1;
            char g[48];
            snprintf(g, sizeof g, "tatoeba:%s:%d", lang, i);
            add_par(c, g, lang, lines[i], la);
            add_par(c, g, "en", tab + 1, lb);
            side[0][ns[0]] = lines[i];
            slen[0][ns[0]++] = la;
            char *en = xstrndup(tab + 1, lb);
            int found;
            strmap_slot(&seen, en, &found);
            if (found) free(en);
            else {
                keep = xrealloc(keep, (size_t)(n_keep + 1) * sizeof *keep);
                keep[n_keep++] = en;
                side[1][ns[1]] = tab + 1;
                slen[1][ns[1]++] = lb;
            }
            for (int s = 0; s < 2 && rc == 0; s++)
                if (ns[s] == 20) {
                    rc = add_doc(c, s ? "en" : lang, side[s], slen[s], ns[s]);
                    ns[s] = 0;
                }
        }
        for (int s = 0; s < 2 && rc == 0; s++)
            if (ns[s]) rc = add_doc(c, s ? "en" : lang, side[s], slen[s], ns[s]);
        free(data);
        free(lines);
        free(lens);
    }
    strmap_free(&seen);
    for (int i = 0; i < n_keep; i++) free(keep[i]);
    free(keep);
    if (files) free_strv(files);
    return rc;
}

/* Pieces in text (SentencePiece ids, no <s> </s>), line by line. */
static long long count_tokens(const Tokenizer *tok, const StrBuf *text) {
    const char **lines = NULL;
    size_t *lens = NULL;
    int n = 0, cap = 0;
    for (const char *p = text->data; p && p < text->data + text->len;) {
        const char *nl = memchr(p, '\n', (size_t)(text->data + text->len - p)), *end = nl ? nl : text->data + text->len;
        if (end > p) {
            if (n == cap) {
                cap = cap ? 2 * cap : 4096;
                lines = xrealloc(lines, (size_t)cap * sizeof *lines);
                lens = xrealloc(lens, (size_t)cap * sizeof *lens);
            }
            lines[n] = p;
            lens[n++] = (size_t)(end - p);
        }
        p = nl ? nl + 1 : text->data + text->len;
    }
    IntVec *ids = xcalloc((size_t)(n ? n : 1), sizeof *ids);
    long long total = -1;
    if (tokenizer_encode_batch(tok, lines, lens, n, TOK_SPM, 0, ids) == 0)
        for (int i = 0, first = 1; i < n; i++, first = 0) total = (first ? 0 : total) + (long long)ids[i].n;
    if (n == 0) total = 0;
    for (int i = 0; i < n; i++) iv_free(&ids[i]);
    free(ids);
    free(lines);
    free(lens);
    return total;
}

static int by_name(const void *a, const void *b) { return strcmp(((const CorpusStats *)a)->lang, ((const CorpusStats *)b)->lang); }

/* Every source into c (see corpus.h for what is read, and what never is). */
static int gather(Corpus *c, const char *data_dir) {
    char *squad = path_join(data_dir, "squad-train/train-v1.1.json"), *xq = path_join(data_dir, "xquad-r");
    char *nq = path_join(data_dir, "native-qa"), *ntrex = path_join(data_dir, "parallel/ntrex");
    char *tat = path_join(data_dir, "parallel/tatoeba");
    int rc = add_squad(c, "squad", squad, "en", SPLIT_ALL);
    int n_native = 0;
    char **native = rc == 0 ? list_files(nq, ".json", &n_native) : NULL;
    for (int i = 0; i < n_native && rc == 0; i++) { /* ar-arcd.json, zh-cmrc2018-dev.json: the language first */
        const char *base = strrchr(native[i], '/') ? strrchr(native[i], '/') + 1 : native[i];
        char lang[16];
        snprintf(lang, sizeof lang, "%.*s", (int)strcspn(base, "-."), base);
        rc = add_squad(c, "squad", native[i], lang, SPLIT_ALL);
    }
    if (native) free_strv(native);
    if (rc == 0) rc = add_squad(c, "xquad-r", xq, NULL, SPLIT_TRAIN); /* the train articles only */
    if (rc == 0) rc = add_ntrex(c, ntrex);
    if (rc == 0) rc = add_tatoeba(c, tat);
    free(squad); free(xq); free(nq); free(ntrex); free(tat);
    return rc;
}

int corpus_build(const char *data_dir, const char *out_dir, const Tokenizer *tok, CorpusStats **stats, int *n,
                 long long *n_parallel) {
    Corpus c;
    memset(&c, 0, sizeof c);
    *stats = NULL;
    *n = 0;
    int rc = gather(&c, data_dir);
    if (rc == 0) rc = mkdir_p(out_dir);
    CorpusStats *st = xcalloc(MAX_LANGS, sizeof *st);
    for (int l = 0; l < c.n && rc == 0; l++) {
        StrBuf name = {0};
        sb_printf(&name, "%s.txt", c.names[l]);
        char *path = path_join(out_dir, name.data);
        rc = write_file_atomic(path, c.text[l].data ? c.text[l].data : "", c.text[l].len);
        snprintf(st[l].lang, sizeof st[l].lang, "%s", c.names[l]);
        st[l].docs = c.docs[l];
        st[l].chars = (long long)c.text[l].len;
        st[l].tokens = tok ? count_tokens(tok, &c.text[l]) : -1;
        free(path);
        sb_free(&name);
    }
    if (rc == 0) {
        char *path = path_join(out_dir, "parallel.tsv");
        StrBuf all = {0};
        sb_puts(&all, "# xlmr corpus: NTREX-128 lines (ntrex:LINE) and Tatoeba pairs (tatoeba:LANG:LINE)\n");
        sb_append(&all, c.par.data ? c.par.data : "", c.par.len);
        rc = write_file_atomic(path, all.data, all.len);
        sb_free(&all);
        free(path);
    }
    for (int l = 0; l < c.n; l++) sb_free(&c.text[l]);
    sb_free(&c.par);
    if (rc) {
        free(st);
        return -1;
    }
    qsort(st, (size_t)c.n, sizeof *st, by_name);
    *stats = st;
    *n = c.n;
    *n_parallel = c.n_par;
    return 0;
}
