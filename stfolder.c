/* stfolder.c: sentence-transformers and HF tokenizer files (see stfolder.h).
 * The formats follow sentence-transformers 3 (SentenceTransformer.save:
 * modules.json, config_sentence_transformers.json; models/Pooling.py
 * get_config_dict; models/Transformer.py sentence_bert_config.json) and
 * transformers' XLMRobertaTokenizer (its special tokens, <mask> stripping the
 * space to its left). */
#include "stfolder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"
#include "xlmr.h"

#define ST_TYPE "sentence_transformers.models."

/* ------------------------------------------------------------------------- */
/* Writing                                                                   */

static int write_sb(const char *dir, const char *name, StrBuf *sb) {
    char *p = path_join(dir, name);
    int rc = write_file_atomic(p, sb->data, sb->len);
    free(p);
    sb_free(sb);
    return rc;
}

static void modules_json(StrBuf *sb) {
    static const char *const mods[3][2] = {{"", "Transformer"}, {"1_Pooling", "Pooling"}, {"2_Normalize", "Normalize"}};
    sb_puts(sb, "[\n");
    for (int i = 0; i < 3; i++)
        sb_printf(sb, "  {\"idx\": %d, \"name\": \"%d\", \"path\": \"%s\", \"type\": \"" ST_TYPE "%s\"}%s\n", i, i,
                  mods[i][0], mods[i][1], i < 2 ? "," : "");
    sb_puts(sb, "]\n");
}

static void pooling_json(StrBuf *sb, int hidden, int pooling) {
    sb_printf(sb, "{\n  \"word_embedding_dimension\": %d,\n", hidden);
    sb_printf(sb, "  \"pooling_mode_cls_token\": %s,\n", pooling == POOL_CLS ? "true" : "false");
    sb_printf(sb, "  \"pooling_mode_mean_tokens\": %s,\n", pooling == POOL_MEAN ? "true" : "false");
    /* include_prompt: the prompt's tokens are pooled too, as here (the prefix is text) */
    sb_puts(sb, "  \"pooling_mode_max_tokens\": false,\n  \"pooling_mode_mean_sqrt_len_tokens\": false,\n"
                "  \"pooling_mode_weightedmean_tokens\": false,\n  \"pooling_mode_lasttoken\": false,\n"
                "  \"include_prompt\": true\n}\n");
}

static void st_config_json(StrBuf *sb, const StFolder *f) {
    sb_puts(sb, "{\n  \"__version__\": {\"sentence_transformers\": \"3.0.0\"},\n  \"prompts\": {\"query\": ");
    sb_json_string(sb, f->query_prompt);
    sb_puts(sb, ", \"passage\": ");
    sb_json_string(sb, f->passage_prompt);
    sb_puts(sb, "},\n  \"default_prompt_name\": null,\n  \"similarity_fn_name\": \"cosine\"\n}\n");
}

/* The special tokens as XLMRobertaTokenizer has them: <mask> takes the space
 * before it (lstrip), the others are plain strings. */
static void special_tokens(StrBuf *sb, const char *indent) {
    static const char *const names[][2] = {{"bos_token", "<s>"},  {"cls_token", "<s>"},   {"eos_token", "</s>"},
                                           {"pad_token", "<pad>"}, {"sep_token", "</s>"}, {"unk_token", "<unk>"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        sb_printf(sb, "%s\"%s\": \"%s\",\n", indent, names[i][0], names[i][1]);
    sb_printf(sb, "%s\"mask_token\": {\"content\": \"<mask>\", \"lstrip\": true, \"normalized\": false, "
                  "\"rstrip\": false, \"single_word\": false}",
              indent);
}

static void tokenizer_config_json(StrBuf *sb, int vocab, int model_max_length) {
    static const char *const added[4] = {"<s>", "<pad>", "</s>", "<unk>"};
    sb_puts(sb, "{\n  \"tokenizer_class\": \"XLMRobertaTokenizer\",\n");
    sb_printf(sb, "  \"model_max_length\": %d,\n  \"clean_up_tokenization_spaces\": true,\n", model_max_length);
    sb_puts(sb, "  \"added_tokens_decoder\": {\n");
    for (int i = 0; i < 5; i++)
        sb_printf(sb, "    \"%d\": {\"content\": \"%s\", \"lstrip\": %s, \"normalized\": false, \"rstrip\": false, "
                      "\"single_word\": false, \"special\": true}%s\n",
                  i < 4 ? i : vocab - 1, i < 4 ? added[i] : "<mask>", i < 4 ? "false" : "true", i < 4 ? "," : "");
    sb_puts(sb, "  },\n");
    special_tokens(sb, "  ");
    sb_puts(sb, "\n}\n");
}

int stfolder_write(const char *dir, const StFolder *f, int hidden, int vocab, int model_max_length) {
    if (!f->query_prompt || !f->passage_prompt || (f->pooling != POOL_MEAN && f->pooling != POOL_CLS))
        return xerr("%s: sentence-transformers files need a pooling and both prompts", dir);
    if (vocab < 5) return xerr("%s: vocabulary of %d too small for XLM-R's special tokens", dir, vocab);
    char *pool_dir = path_join(dir, "1_Pooling"), *norm_dir = path_join(dir, "2_Normalize");
    int rc = mkdir_p(pool_dir) || mkdir_p(norm_dir) ? -1 : 0;
    StrBuf sb = {0};
    if (rc == 0) {
        pooling_json(&sb, hidden, f->pooling);
        rc = write_sb(pool_dir, "config.json", &sb);
    }
    if (rc == 0) {
        modules_json(&sb);
        rc = write_sb(dir, "modules.json", &sb);
    }
    if (rc == 0) {
        sb_printf(&sb, "{\n  \"max_seq_length\": %d,\n  \"do_lower_case\": false\n}\n", f->max_seq_length);
        rc = write_sb(dir, "sentence_bert_config.json", &sb);
    }
    if (rc == 0) {
        st_config_json(&sb, f);
        rc = write_sb(dir, "config_sentence_transformers.json", &sb);
    }
    if (rc == 0) {
        tokenizer_config_json(&sb, vocab, model_max_length);
        rc = write_sb(dir, "tokenizer_config.json", &sb);
    }
    if (rc == 0) {
        sb_puts(&sb, "{\n");
        special_tokens(&sb, "  ");
        sb_puts(&sb, "\n}\n");
        rc = write_sb(dir, "special_tokens_map.json", &sb);
    }
    sb_free(&sb);
    free(pool_dir);
    free(norm_dir);
    return rc;
}

int stfolder_save_model(const Xlmr *m, const char *dir, const char *spm, const StFolder *f) {
    StFolder g = *f;
    int limit = xlmr_max_len(&m->cfg);
    if (g.max_seq_length <= 0 || g.max_seq_length > limit) g.max_seq_length = limit;
    if (xlmr_save(m, dir, spm)) return -1;
    return stfolder_write(dir, &g, m->cfg.hidden, m->cfg.vocab, limit);
}

/* ------------------------------------------------------------------------- */
/* Reading                                                                   */

/* Parses DIR/NAME when it exists: 1 parsed, 0 absent, -1 + xerr. */
static int json_file(const char *dir, const char *name, Json *j, char **path) {
    *path = path_join(dir, name);
    if (!path_exists(*path)) return 0;
    return json_parse_file(j, *path) ? -1 : 1;
}

static int json_flag(const Json *o, const char *key) {
    const Json *v = json_get(o, key);
    return v && v->type == JSON_TRUE;
}

/* 1_Pooling/config.json: exactly one of the modes this program computes. */
static int read_pooling(const char *dir, const char *sub, StFolder *f) {
    char *pdir = path_join(dir, sub), *path;
    Json j;
    int rc = json_file(pdir, "config.json", &j, &path);
    free(pdir);
    if (rc == 0) rc = xerr("%s: missing (the Pooling module's configuration)", path);
    if (rc < 0) goto done;
    static const char *const other[] = {"pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                                        "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"};
    int mean = json_flag(&j, "pooling_mode_mean_tokens"), cls = json_flag(&j, "pooling_mode_cls_token");
    rc = 0;
    for (size_t i = 0; i < sizeof other / sizeof other[0] && rc == 0; i++)
        if (json_flag(&j, other[i])) rc = xerr("%s: %s is not supported (only mean or cls pooling)", path, other[i]);
    if (rc == 0 && mean + cls != 1)
        rc = xerr("%s: needs exactly one of pooling_mode_mean_tokens and pooling_mode_cls_token true", path);
    if (rc == 0) f->pooling = cls ? POOL_CLS : POOL_MEAN;
    json_free(&j);
done:
    free(path);
    return rc;
}

/* A module path stays inside the folder: relative, no "..". */
static int safe_subpath(const char *p) {
    return p[0] != '/' && strstr(p, "..") == NULL;
}

/* 1 when type is sentence-transformers' class `cls`, in any of its module
 * paths ("sentence_transformers.models.Pooling" in 2.x-3.x, deeper in later ones). */
static int st_type_is(const char *type, const char *cls) {
    size_t n = strlen(type), k = strlen(cls);
    return !strncmp(type, "sentence_transformers.", 22) && n > k && type[n - k - 1] == '.' && !strcmp(type + n - k, cls);
}

static int read_modules(const char *dir, StFolder *f) {
    char *path;
    Json j;
    int rc = json_file(dir, "modules.json", &j, &path);
    if (rc <= 0) {
        free(path);
        return rc;
    }
    f->has_modules = 1;
    int have_transformer = 0, have_pooling = 0;
    if (j.type != JSON_ARRAY) rc = xerr("%s: must be a list of modules", path);
    for (size_t i = 0; rc >= 0 && i < j.n; i++) {
        const Json *m = &j.items[i];
        const char *type = json_get_str(m, "type", path), *sub = type ? json_get_str(m, "path", path) : NULL;
        if (!sub) rc = -1;
        else if (!safe_subpath(sub)) rc = xerr("%s: module path '%s' leaves the folder", path, sub);
        else if (st_type_is(type, "Transformer")) {
            if (i != 0 || have_transformer) rc = xerr("%s: the Transformer must be the first and only encoder", path);
            have_transformer = 1;
            free(f->model_dir);
            f->model_dir = *sub ? path_join(dir, sub) : xstrdup(dir);
        } else if (st_type_is(type, "Pooling")) {
            have_pooling = 1;
            rc = read_pooling(dir, sub, f);
        } else if (st_type_is(type, "Normalize"))
            f->normalize = 1;
        else
            rc = xerr("%s: module %zu (%s) is not supported: only Transformer, Pooling (mean or cls) and Normalize",
                      path, i, type);
    }
    if (rc >= 0 && !have_transformer) rc = xerr("%s: no sentence_transformers.models.Transformer module", path);
    if (rc >= 0 && !have_pooling) rc = xerr("%s: no Pooling module (token embeddings are not supported)", path);
    json_free(&j);
    free(path);
    return rc < 0 ? -1 : 0;
}

/* A prompt named `name` in the prompts object, or NULL. */
static int read_prompt(const Json *prompts, const char *name, const char *path, char **out) {
    const Json *p = json_get(prompts, name);
    if (!p || *out) return 0;
    if (p->type != JSON_STRING || strlen(p->str) != p->len) return xerr("%s: prompts.%s must be a string", path, name);
    *out = xstrdup(p->str);
    return 0;
}

static int read_settings(const char *mdir, StFolder *f) {
    char *path;
    Json j;
    int rc = json_file(mdir, "sentence_bert_config.json", &j, &path);
    if (rc > 0) {
        const Json *v = json_get(&j, "max_seq_length");
        long n = 0;
        if (v && (json_get_int(&j, "max_seq_length", &n, path) || n < 3 || n > 1000000))
            rc = xerr("%s: max_seq_length must be an integer in [3, 1000000]", path);
        /* the tokenizer here never lowercases: such a model would get other ids than it was trained on */
        if (rc > 0 && json_flag(&j, "do_lower_case")) rc = xerr("%s: do_lower_case true is not supported", path);
        f->max_seq_length = (int)n;
        json_free(&j);
    }
    free(path);
    return rc < 0 ? -1 : 0;
}

/* default_prompt_name: the prompt sentence-transformers' encode() prepends when none is named. */
static int read_default_prompt(const Json *cfg, const Json *prompts, const char *path, StFolder *f) {
    const Json *d = json_get(cfg, "default_prompt_name");
    if (!d || d->type == JSON_NULL) return 0;
    const Json *p = d->type == JSON_STRING && prompts ? json_get(prompts, d->str) : NULL;
    if (!p || p->type != JSON_STRING || strlen(p->str) != p->len)
        return xerr("%s: default_prompt_name must name one of the prompts", path);
    f->default_prompt = xstrdup(p->str);
    return 0;
}

static int read_prompts(const char *dir, StFolder *f) {
    char *path;
    Json j;
    int rc = json_file(dir, "config_sentence_transformers.json", &j, &path);
    if (rc > 0) {
        const Json *p = json_get(&j, "prompts");
        if (p && p->type != JSON_OBJECT && p->type != JSON_NULL) rc = xerr("%s: prompts must be an object", path);
        /* "passage" is this method's name; some models call it "document" */
        if (rc > 0 && p) rc = read_prompt(p, "query", path, &f->query_prompt);
        if (rc >= 0 && p) rc = read_prompt(p, "passage", path, &f->passage_prompt);
        if (rc >= 0 && p) rc = read_prompt(p, "document", path, &f->passage_prompt);
        if (rc >= 0) rc = read_default_prompt(&j, p, path, f);
        json_free(&j);
    }
    free(path);
    return rc < 0 ? -1 : 0;
}

int stfolder_read(const char *dir, StFolder *f) {
    memset(f, 0, sizeof *f);
    f->pooling = -1;
    f->model_dir = xstrdup(dir);
    /* sentence_bert_config.json sits beside the Transformer's files; read both places */
    int rc = read_modules(dir, f);
    if (rc == 0) rc = read_settings(f->model_dir, f);
    if (rc == 0 && !f->max_seq_length && strcmp(f->model_dir, dir) != 0) rc = read_settings(dir, f);
    if (rc == 0) rc = read_prompts(dir, f);
    if (rc != 0) stfolder_free(f);
    return rc;
}

void stfolder_free(StFolder *f) {
    free(f->query_prompt);
    free(f->passage_prompt);
    free(f->default_prompt);
    free(f->model_dir);
    memset(f, 0, sizeof *f);
    f->pooling = -1;
}

int stfolder_fit_default(int dflt, int limit, const char *cmd, const char *what) {
    if (dflt <= limit) return dflt;
    fprintf(stderr, "%s: %s default %d lowered to the model's limit of %d tokens\n", cmd, what, dflt, limit);
    return limit;
}
