/* squad.c: SQuAD-format data as sentence retrieval data, and the training
 * pairs written from it (see squad.h for the layout, the sentence rule and the
 * split rule). A paragraph's sentences become candidates in load order and
 * each question points at the one holding its answer; questions with one id
 * across languages share a group, which is what makes them translations. */
#include "squad.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---------------------------------------------------------------------------
 * Splits. */
static const char *const split_names[4] = {"all", "train", "dev", "test"}; /* by SPLIT_* */

int squad_split_parse(const char *s) {
    if (!s) return SPLIT_ALL;
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, split_names[i])) return i;
    return xerr("unknown split '%s' (train, dev, test or all)", s);
}

const char *squad_split_name(int split) { return split >= 0 && split < 4 ? split_names[split] : "?"; }

int squad_split_of_article(int k) {
    int r = k % 10;
    return r <= 5 ? SPLIT_TRAIN : r <= 7 ? SPLIT_DEV : SPLIT_TEST;
}

/* ---------------------------------------------------------------------------
 * UTF-8 helpers (the files are validated by the JSON reader). */
static unsigned utf8_next(const char *s, size_t *i) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[*i];
    if (c < 0x80) { (*i)++; return c; }
    int l = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    unsigned cp = c & (0x3F >> (l - 1));
    for (int k = 1; k < l; k++) cp = cp << 6 | (u[*i + k] & 0x3F);
    *i += (size_t)l;
    return cp;
}

/* byte offset of every code point, plus the end: (ncp + 1) entries */
static size_t *cp_offsets(const char *s, size_t len, int *ncp) {
    size_t *off = xmalloc((len + 1) * sizeof(size_t));
    int n = 0;
    size_t i = 0;
    while (i < len) {
        off[n++] = i;
        utf8_next(s, &i);
    }
    off[n] = len;
    *ncp = n;
    return off;
}

static int is_space_cp(unsigned c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x3000 || c == 0x200B ||
           (c >= 0x2000 && c <= 0x200A);
}
static int is_ender(unsigned c) {
    return c == '.' || c == '!' || c == '?' || c == 0x3002 || c == 0xFF01 || c == 0xFF1F || c == 0x0964 ||
           c == 0x06D4 || c == 0x061F || c == 0x203C || c == 0xFF0E;
}
/* full-width and CJK enders end a sentence without a following space */
static int is_cjk_ender(unsigned c) { return c == 0x3002 || c == 0xFF01 || c == 0xFF1F; }
static int is_closer(unsigned c) {
    return c == '"' || c == '\'' || c == ')' || c == ']' || c == 0x201D || c == 0x2019 || c == 0xBB ||
           c == 0x300D || c == 0x300F || c == 0xFF09;
}

/* Letter case for ASCII, Latin-1 and Latin Extended-A (enough for the no-space rule). */
static int is_upper(unsigned c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z';
    if (c >= 0xC0 && c <= 0xDE) return c != 0xD7;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c % 2 == 0;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 1;
    return 0;
}
static int is_lower(unsigned c) {
    if (c < 0x80) return c >= 'a' && c <= 'z';
    if (c >= 0xDF && c <= 0xFF) return c != 0xF7;
    if (c >= 0x100 && c <= 0x17F) return !is_upper(c) && c != 0x138 && c != 0x149;
    return 0;
}

/* "Mr. Smith", "J. R. R. Tolkien", "J.R.R. Tolkien", "e.g. this": a '.' after these is no sentence end. */
static int is_abbrev(const unsigned *cps, int start, int dot) {
    int w = dot;
    while (w > start && !is_space_cp(cps[w - 1]) && cps[w - 1] != '(') w--;
    int n = dot - w;
    if (n >= 3 && cps[dot - 2] == '.') return 1; /* "J.R.R." "U.S." */
    if (n == 1 && cps[w] < 0x80 && ((cps[w] >= 'A' && cps[w] <= 'Z') || (cps[w] >= 'a' && cps[w] <= 'z'))) return 1;
    static const char *const ab[] = {"Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "vs", "Prof", "e.g", "i.e", "No", "Gen", "Col", "Lt", "Mt", "Ft", 0};
    for (int k = 0; ab[k]; k++) {
        int l = (int)strlen(ab[k]);
        if (l != n) continue;
        int same = 1;
        for (int m = 0; m < l; m++) same &= cps[w + m] == (unsigned char)ab[k][m];
        if (same) return 1;
    }
    return 0;
}

int squad_split_sentences(const char *text, IntVec *breaks) {
    size_t len = strlen(text), i = 0;
    unsigned *cps = xmalloc((len + 1) * sizeof(unsigned));
    int n = 0;
    while (i < len) cps[n++] = utf8_next(text, &i);
    int count = 0, start = 0, k = 0;
    while (k < n) {
        unsigned c = cps[k++];
        if (!is_ender(c)) continue;
        int dot = k - 1;
        while (k < n && (is_ender(cps[k]) || is_closer(cps[k]))) k++;
        int end_here;
        if (is_cjk_ender(c)) end_here = 1;
        else if (k == n) end_here = 1;
        else if (!is_space_cp(cps[k])) {
            /* "...Musul).Astronom": a missing space before a capital still ends a
             * sentence after a lowercase word or a bracket (not "U.S.A", "J.R.R.") */
            unsigned prev = dot > start ? cps[dot - 1] : ' ';
            end_here = c != 0x06D4 && is_upper(cps[k]) && dot - 2 >= start && !is_space_cp(cps[dot - 2]) &&
                       (is_lower(prev) || prev == ')');
        }
        else {
            int nx = k;
            while (nx < n && is_space_cp(cps[nx])) nx++;
            /* "... 3.5 million", "approx. twenty": no capital or non-Latin start, no end */
            end_here = nx == n || !(cps[nx] >= 'a' && cps[nx] <= 'z');
            if (c == '.' && k == dot + 1 && is_abbrev(cps, start, dot)) end_here = 0;
        }
        if (!end_here) continue;
        while (k < n && is_space_cp(cps[k])) k++;
        iv_push(breaks, start);
        iv_push(breaks, k);
        count++;
        start = k;
    }
    if (start < n) {
        int only_space = 1;
        for (int m = start; m < n; m++) only_space &= is_space_cp(cps[m]);
        if (only_space && count > 0) breaks->data[breaks->n - 1] = n; /* join trailing space */
        else {
            iv_push(breaks, start);
            iv_push(breaks, n);
            count++;
        }
    }
    free(cps);
    return count;
}

/* ---------------------------------------------------------------------------
 * Loading. */
static const char *const XQUAD_LANGS[] = {"ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh", 0};
static const char *const MLQA_LANGS[] = {"ar", "de", "en", "es", "hi", "vi", "zh", 0};

/* A sentence cut out of its paragraph: ASCII whitespace at the ends dropped
 * (the spans of squad_split_sentences carry the trailing space). */
static char *trim_dup(const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    return xstrndup(s, n);
}

/* Question ids of en.json -> article index, for the split rule. The map
 * borrows its keys, so the strings are kept in *strs until the load ends. */
static int load_split_ref(StrMap *m, char ***strs, int *nstr, const char *path) {
    Json j;
    if (json_parse_file(&j, path)) return -1;
    const Json *data = json_get(&j, "data");
    if (!data || data->type != JSON_ARRAY) {
        json_free(&j);
        return xerr("%s: not SQuAD format (no \"data\" array)", path);
    }
    for (size_t a = 0; a < data->n; a++) {
        const Json *ps = json_get(json_at(data, a), "paragraphs");
        for (size_t p = 0; ps && p < ps->n; p++) {
            const Json *qs = json_get(json_at(ps, p), "qas");
            for (size_t q = 0; qs && q < qs->n; q++) {
                const Json *id = json_get(json_at(qs, q), "id");
                if (!id || id->type != JSON_STRING) continue;
                *strs = xrealloc(*strs, (size_t)(*nstr + 1) * sizeof(char *));
                char *s = xstrdup(id->str);
                (*strs)[(*nstr)++] = s;
                int found;
                int *v = strmap_slot(m, s, &found);
                if (!found) *v = (int)a;
            }
        }
    }
    json_free(&j);
    return 0;
}

static const char *first_qid(const Json *article) {
    const Json *ps = json_get(article, "paragraphs");
    for (size_t p = 0; ps && p < ps->n; p++) {
        const Json *qs = json_get(json_at(ps, p), "qas");
        for (size_t q = 0; qs && q < qs->n; q++) {
            const Json *id = json_get(json_at(qs, q), "id");
            if (id && id->type == JSON_STRING) return id->str;
        }
    }
    return NULL;
}

/* The question id: a string, or (TQuAD) an integer, written into buf. */
static const char *qa_id(const Json *qa, char buf[32], const char *path) {
    const Json *id = json_get(qa, "id");
    if (id && id->type == JSON_NUMBER && id->num == (long)id->num) {
        snprintf(buf, 32, "%ld", (long)id->num);
        return buf;
    }
    return json_get_str(qa, "id", path);
}

/* answer_start: an integer, or (TQuAD) a string of digits. */
static int answer_start(const Json *a, long *out, const char *path, const char *id) {
    const Json *v = json_get(a, "answer_start");
    if (v && v->type == JSON_STRING && v->len > 0 && v->len < 10 && strspn(v->str, "0123456789") == v->len) {
        *out = atol(v->str);
        return 0;
    }
    if (!v || v->type != JSON_NUMBER || v->num != (long)v->num || v->num < 0)
        return xerr("%s: question %s: answer_start must be a non-negative integer", path, id);
    *out = (long)v->num;
    return 0;
}

/* What the files of one squad_load share: the data being filled (with the
 * capacities of its arrays), the question ids seen so far and the split. */
typedef struct {
    SquadData *d;
    size_t cap_p, cap_s, cap_q;
    StrMap ids;        /* question id -> group */
    const StrMap *ref; /* en.json's question ids -> article index, or NULL */
    int split;         /* SPLIT_* */
    int strict_ids;    /* an id twice in one language is an error (the LAReQA sets) */
} SquadLoader;

/* The paragraph being read: where it is, for messages, and its sentences as
 * code-point spans. */
typedef struct {
    const char *path;
    size_t article, index;
    const Json *ctx, *sentences; /* sentences: the given texts, or NULL (cut from ctx) */
    size_t *off;                 /* byte offset of every code point of ctx, and the end */
    int ncp;
    IntVec brk;                  /* (start, end) code-point pairs, one per sentence */
} SquadPara;

/* The sentence spans of a paragraph: its sentence_breaks (LAReQA) checked
 * against its length, or squad_split_sentences when it has none. */
static int read_sentence_breaks(SquadPara *P, const Json *par) {
    const Json *sb = json_get(par, "sentence_breaks");
    const Json *st = json_get(par, "sentences");
    P->brk.n = 0;
    P->sentences = NULL;
    if (!sb) {
        squad_split_sentences(P->ctx->str, &P->brk);
        return 0;
    }
    if (sb->type != JSON_ARRAY)
        return xerr("%s: article %zu, paragraph %zu: sentence_breaks is not an array", P->path, P->article, P->index);
    for (size_t s = 0; s < sb->n; s++) {
        const Json *b = json_at(sb, s);
        const Json *b0 = json_at(b, 0), *b1 = json_at(b, 1);
        if (!b || b->type != JSON_ARRAY || b->n != 2 || b0->type != JSON_NUMBER || b1->type != JSON_NUMBER ||
            b0->num < 0 || b0->num > b1->num || b1->num > P->ncp || b0->num != (int)b0->num ||
            b1->num != (int)b1->num)
            return xerr("%s: article %zu, paragraph %zu: bad sentence break %zu", P->path, P->article, P->index, s);
        iv_push(&P->brk, (int)b0->num);
        iv_push(&P->brk, (int)b1->num);
    }
    if (st && (st->type != JSON_ARRAY || st->n != sb->n))
        return xerr("%s: article %zu, paragraph %zu: sentences and sentence_breaks differ in length", P->path,
                    P->article, P->index);
    P->sentences = st;
    return 0;
}

/* Appends the paragraph and its sentences (candidates) to the data; returns its index. */
static int add_paragraph(SquadLoader *L, const SquadPara *P, int lang) {
    SquadData *d = L->d;
    int nsent = (int)P->brk.n / 2;
    if ((size_t)d->n_paras == L->cap_p) {
        L->cap_p = L->cap_p ? 2 * L->cap_p : 256;
        d->paras = xrealloc(d->paras, L->cap_p * sizeof(SquadParagraph));
    }
    d->paras[d->n_paras] = (SquadParagraph){.context = xstrdup(P->ctx->str),
                                            .lang = lang,
                                            .article = (int)P->article,
                                            .first_sent = d->n_sents,
                                            .n_sent = nsent};
    for (int s = 0; s < nsent; s++) {
        if ((size_t)d->n_sents == L->cap_s) {
            L->cap_s = L->cap_s ? 2 * L->cap_s : 1024;
            d->sents = xrealloc(d->sents, L->cap_s * sizeof(SquadSentence));
        }
        const Json *sj = P->sentences ? json_at(P->sentences, (size_t)s) : NULL;
        char *text;
        if (sj && sj->type == JSON_STRING) text = xstrdup(sj->str);
        else {
            size_t b0 = P->off[P->brk.data[2 * s]], b1 = P->off[P->brk.data[2 * s + 1]];
            text = trim_dup(P->ctx->str + b0, b1 - b0);
        }
        d->sents[d->n_sents++] = (SquadSentence){.text = text, .para = d->n_paras};
    }
    return d->n_paras++;
}

/* Appends one question of paragraph pi; its relevant sentence is the one whose
 * span holds answer_start. SQuAD 2.0's unanswerable questions are skipped. */
static int add_question(SquadLoader *L, const SquadPara *P, const Json *qa, int lang, int pi) {
    SquadData *d = L->d;
    const Json *imp = json_get(qa, "is_impossible");
    if (imp && imp->type == JSON_TRUE) return 0;
    char idbuf[32];
    const char *id = qa_id(qa, idbuf, P->path);
    const char *qt = id ? json_get_str(qa, "question", P->path) : NULL;
    if (!id || !qt) return -1;
    const Json *ans = json_get(qa, "answers");
    if (!ans || ans->type != JSON_ARRAY || ans->n == 0) return xerr("%s: question %s: no \"answers\"", P->path, id);
    long as = 0;
    if (answer_start(json_at(ans, 0), &as, P->path, id)) return -1;
    int sent = -1, nsent = (int)P->brk.n / 2;
    for (int s = 0; s < nsent; s++)
        if (as >= P->brk.data[2 * s] && as < P->brk.data[2 * s + 1]) { sent = s; break; }
    if (sent < 0) return xerr("%s: question %s: answer_start %ld is outside every sentence", P->path, id, as);
    if ((size_t)d->n_qs == L->cap_q) {
        L->cap_q = L->cap_q ? 2 * L->cap_q : 1024;
        d->qs = xrealloc(d->qs, L->cap_q * sizeof(SquadQuestion));
    }
    SquadQuestion *Q = &d->qs[d->n_qs];
    *Q = (SquadQuestion){.id = xstrdup(id),
                         .question = xstrdup(qt),
                         .lang = lang,
                         .para = pi,
                         .answer_start = (int)as,
                         .sent = d->paras[pi].first_sent + sent};
    int found;
    int *g = strmap_slot(&L->ids, Q->id, &found);
    if (!found) *g = d->n_groups++;
    Q->group = *g;
    d->n_qs++;
    /* an id twice in one language would make its relevant set ambiguous */
    if (L->strict_ids && found)
        for (int k = d->n_qs - 2; k >= 0 && d->qs[k].lang == lang; k--)
            if (d->qs[k].group == Q->group) return xerr("%s: question id %s appears twice", P->path, id);
    return 0;
}

/* One paragraph: its sentences, then its questions. */
static int read_paragraph(SquadLoader *L, SquadPara *P, const Json *par, int lang) {
    const Json *qs = json_get(par, "qas");
    P->ctx = json_get(par, "context");
    if (!P->ctx || P->ctx->type != JSON_STRING || !qs || qs->type != JSON_ARRAY)
        return xerr("%s: not SQuAD format (article %zu, paragraph %zu: no \"context\" string or \"qas\" array)",
                    P->path, P->article, P->index);
    free(P->off);
    P->off = cp_offsets(P->ctx->str, P->ctx->len, &P->ncp);
    if (read_sentence_breaks(P, par)) return -1;
    int pi = add_paragraph(L, P, lang);
    for (size_t q = 0; q < qs->n; q++)
        if (add_question(L, P, json_at(qs, q), lang, pi)) return -1;
    return 0;
}

/* Every article of one SQuAD-format file in the loader's split, as language lang. */
static int squad_read_language_file(SquadLoader *L, const char *path, int lang) {
    Json j;
    if (json_parse_file(&j, path)) return -1;
    int rc = 0;
    SquadPara P = {.path = path};
    const Json *data = json_get(&j, "data");
    if (!data || data->type != JSON_ARRAY) rc = xerr("%s: not SQuAD format (no \"data\" array)", path);
    for (size_t a = 0; rc == 0 && a < data->n; a++) {
        const Json *art = json_at(data, a);
        const Json *ps = json_get(art, "paragraphs");
        if (!ps || ps->type != JSON_ARRAY) {
            rc = xerr("%s: not SQuAD format (article %zu has no \"paragraphs\" array)", path, a);
            break;
        }
        if (L->split != SPLIT_ALL) {
            const char *q0 = first_qid(art);
            int k = q0 && L->ref ? strmap_get(L->ref, q0) : -1;
            if (squad_split_of_article(k >= 0 ? k : (int)a) != L->split) continue;
        }
        P.article = a;
        for (size_t p = 0; rc == 0 && p < ps->n; p++) {
            P.index = p;
            rc = read_paragraph(L, &P, json_at(ps, p), lang);
        }
    }
    free(P.off);
    iv_free(&P.brk);
    json_free(&j);
    return rc;
}

static int add_lang(SquadData *d, const char *name) {
    size_t l = strlen(name);
    if (l == 0 || l >= sizeof d->langs[0]) return xerr("bad language code '%s'", name);
    for (size_t i = 0; i < l; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return xerr("bad language code '%s'", name);
    }
    for (int i = 0; i < d->n_langs; i++)
        if (!strcmp(d->langs[i], name)) return xerr("language %s given twice", name);
    if (d->n_langs == SQUAD_MAX_LANGS) return xerr("too many languages (at most %d)", SQUAD_MAX_LANGS);
    memcpy(d->langs[d->n_langs], name, l + 1);
    return d->n_langs++;
}

/* The LAReQA layout: DIR/<lang>.json per language, each language's candidates
 * one range; for a split, en.json's articles decide (the rule in squad.h). */
static int load_lareqa(SquadLoader *L, const char *dataset, const char *dir, char *const *langs, int n_langs) {
    SquadData *d = L->d;
    const char *const *def = !strcmp(dataset, "xquad-r") ? XQUAD_LANGS : MLQA_LANGS;
    if (n_langs > 0) {
        for (int i = 0; i < n_langs; i++)
            if (add_lang(d, langs[i]) < 0) return -1;
    } else {
        for (int i = 0; def[i]; i++) add_lang(d, def[i]);
    }
    StrMap ref = {0};
    char **refstr = NULL;
    int nref = 0, rc = 0;
    if (L->split != SPLIT_ALL) {
        char *en = path_join(dir, "en.json");
        if (path_exists(en)) rc = load_split_ref(&ref, &refstr, &nref, en);
        free(en);
    }
    L->ref = nref ? &ref : NULL;
    L->strict_ids = 1;
    for (int l = 0; rc == 0 && l < d->n_langs; l++) {
        char name[32];
        snprintf(name, sizeof name, "%s.json", d->langs[l]);
        char *path = path_join(dir, name);
        d->lang_first[l] = d->n_sents;
        rc = squad_read_language_file(L, path, l);
        free(path);
    }
    L->ref = NULL;
    strmap_free(&ref);
    for (int i = 0; i < nref; i++) free(refstr[i]);
    free(refstr);
    return rc;
}

/* "squad": one SQuAD-format file, or every *.json of a folder, all of one language. */
static int load_squad_files(SquadLoader *L, const char *dir, const char *lang) {
    if (add_lang(L->d, lang ? lang : "en") < 0) return -1;
    int nfiles = 1, rc = 0;
    char **files;
    if (is_dir(dir)) {
        files = list_files(dir, ".json", &nfiles);
        if (!nfiles) rc = xerr("%s: no *.json files", dir);
    } else {
        files = xcalloc(2, sizeof(char *));
        files[0] = xstrdup(dir);
    }
    for (int f = 0; rc == 0 && f < nfiles; f++) rc = squad_read_language_file(L, files[f], 0);
    free_strv(files);
    return rc;
}

/* rel: the relevant sentence of every (id, language), the first question's when an id repeats. */
static void relevant_sentences(SquadData *d) {
    d->rel = xmalloc((size_t)(d->n_groups > 0 ? d->n_groups : 1) * (size_t)d->n_langs * sizeof(int));
    for (size_t i = 0; i < (size_t)d->n_groups * (size_t)d->n_langs; i++) d->rel[i] = -1;
    for (int q = 0; q < d->n_qs; q++) {
        int *r = &d->rel[(size_t)d->qs[q].group * (size_t)d->n_langs + (size_t)d->qs[q].lang];
        if (*r < 0) *r = d->qs[q].sent;
    }
}

int squad_load(SquadData *d, const char *dataset, const char *dir, char *const *langs, int n_langs,
               const char *lang, int split) {
    memset(d, 0, sizeof *d);
    int lareqa = !strcmp(dataset, "xquad-r") || !strcmp(dataset, "mlqa-r");
    if (!lareqa && strcmp(dataset, "squad") != 0)
        return xerr("unknown dataset '%s' (xquad-r, mlqa-r or squad)", dataset);
    SquadLoader L = {.d = d, .split = split};
    int rc = lareqa ? load_lareqa(&L, dataset, dir, langs, n_langs) : load_squad_files(&L, dir, lang);
    strmap_free(&L.ids);
    if (rc) {
        squad_free(d);
        return -1;
    }
    d->lang_first[d->n_langs] = d->n_sents;
    relevant_sentences(d);
    return 0;
}

int squad_load_csv(SquadData *d, const char *dataset, const char *dir, const char *langs, const char *lang,
                   const char *split) {
    memset(d, 0, sizeof *d);
    int sp = squad_split_parse(split);
    if (sp < 0) return -1;
    int nl = 0;
    char **lv = langs ? split_csv(langs, &nl) : NULL;
    int rc = squad_load(d, dataset, dir, lv, nl, lang, sp);
    if (lv) free_strv(lv);
    return rc;
}

void squad_free(SquadData *d) {
    for (int i = 0; i < d->n_paras; i++) free(d->paras[i].context);
    for (int i = 0; i < d->n_sents; i++) free(d->sents[i].text);
    for (int i = 0; i < d->n_qs; i++) {
        free(d->qs[i].id);
        free(d->qs[i].question);
    }
    free(d->paras);
    free(d->sents);
    free(d->qs);
    free(d->rel);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------------------
 * Training pairs. */

/* A TSV field cannot hold a tab or a line break: they become spaces. */
static void put_field(FILE *f, const char *s) {
    for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

int squad_write_pairs(const SquadData *d, FILE *f, int context, int max_groups) {
    int n = 0;
    for (int q = 0; q < d->n_qs; q++) {
        const SquadQuestion *Q = &d->qs[q];
        if (max_groups > 0 && Q->group >= max_groups) continue;
        n++;
        put_field(f, Q->id);
        fputc('\t', f);
        fputs(d->langs[Q->lang], f);
        fputc('\t', f);
        put_field(f, Q->question);
        fputc('\t', f);
        put_field(f, d->sents[Q->sent].text);
        if (context) {
            fputc(' ', f);
            put_field(f, d->paras[Q->para].context);
        }
        fputc('\n', f);
    }
    return n;
}
