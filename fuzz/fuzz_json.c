/* fuzz/fuzz_json.c: the JSON reader (json.h) on arbitrary bytes, then the
 * config.json reader (xlmr_config_read + xlmr_config_check) on every input that
 * parses as an object. Lookups are exercised on whatever parsed. */
#include "fuzz/fuzz_common.h"
#include "json.h"
#include "xlmr.h"

static void fuzz_json_walk_(const Json *j, int depth) {
    if (depth > 10000) abort(); /* the reader's depth limit should stop far earlier */
    switch (j->type) {
    case JSON_STRING:
        if (j->str == NULL || j->str[j->len] != 0) abort();
        if (!utf8_valid(j->str, j->len)) abort(); /* strings come out as valid UTF-8 */
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < j->n; i++) {
            if (json_at(j, i) != &j->items[i]) abort();
            fuzz_json_walk_(&j->items[i], depth + 1);
        }
        if (json_at(j, j->n) != NULL) abort();
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < j->n; i++) {
            if (json_get(j, j->keys[i]) == NULL) abort();
            fuzz_json_walk_(&j->items[i], depth + 1);
        }
        break;
    default: break;
    }
}

FUZZ_TARGET(json) {
    Json j;
    if (json_parse(&j, (const char *)data, size, "fuzz.json") != 0) {
        if (xerr_msg() == NULL || strncmp(xerr_msg(), "fuzz.json", 9) != 0) abort(); /* errors name the file */
        return 0;
    }
    fuzz_json_walk_(&j, 0);
    int is_obj = j.type == JSON_OBJECT;
    if (is_obj) {
        long l;
        double d;
        (void)json_get_int(&j, "hidden_size", &l, "fuzz.json");
        (void)json_get_num(&j, "layer_norm_eps", &d, "fuzz.json");
        (void)json_get_str(&j, "model_type", "fuzz.json");
    }
    json_free(&j);
    if (is_obj) { /* the same bytes as a model's config.json */
        const char *path = fuzz_tmpfile("config.json", data, size);
        XlmrConfig cfg;
        memset(&cfg, 0, sizeof cfg);
        if (xlmr_config_read(&cfg, path) == 0) (void)xlmr_config_check(&cfg, path);
    }
    return 0;
}
