/* json.h: JSON, read and written. The reader is strict (RFC 8259) and builds a small DOM:
 * UTF-8 only (invalid UTF-8 is an error), \u escapes with surrogate pairs,
 * no trailing commas, no comments, depth limited. Errors carry line and column.
 * Stands alone (util.h only). Writing: sb_json_string / sb_json_key / sb_json_number
 * append to a StrBuf (the document's structure, braces and commas, is the caller's). */
#ifndef XLMR_JSON_H
#define XLMR_JSON_H

#include <stddef.h>

#include "util.h"

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct Json Json;
struct Json {
    JsonType type;
    double num;   /* JSON_NUMBER */
    char *str;    /* JSON_STRING: NUL-terminated UTF-8 (may contain \u0000 as a byte 0: see len) */
    size_t len;   /* JSON_STRING: byte length */
    size_t n;     /* JSON_ARRAY / JSON_OBJECT: number of items */
    Json *items;  /* the n values, in document order */
    char **keys;  /* JSON_OBJECT: the n keys */
};

/* Parses text[0..len). On error returns -1 with xerr("NAME: line L, column C: what"),
 * NAME being the file name given for messages. */
int json_parse(Json *out, const char *text, size_t len, const char *name);
/* Reads and parses a file (errors name the file). */
int json_parse_file(Json *out, const char *path);
/* The same, refusing a file over limit bytes (util.h: READ_LIMIT_*) before
 * reading more of it; json_parse_file's limit is READ_LIMIT_DATA. */
int json_parse_file_max(Json *out, const char *path, size_t limit);
void json_free(Json *j);

/* Lookups: NULL when absent or when j is not an object/array. Last duplicate key wins. */
const Json *json_get(const Json *obj, const char *key);
const Json *json_at(const Json *arr, size_t i);
/* Typed lookups for required fields: return -1 with xerr("NAME: ...") naming the key. */
int json_get_int(const Json *obj, const char *key, long *out, const char *name);
int json_get_num(const Json *obj, const char *key, double *out, const char *name);
const char *json_get_str(const Json *obj, const char *key, const char *name); /* NULL + xerr */

/* Writing: a quoted, escaped JSON string; an object member's key and its colon,
 * "key": ; a number exact to %.17g (integers without a fraction, null for NaN/Inf). */
void sb_json_string(StrBuf *sb, const char *s);
void sb_json_key(StrBuf *sb, const char *key);
void sb_json_number(StrBuf *sb, double x);

#endif
