/* tests/test_json.c: the strict JSON reader on valid and invalid input. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tests/test.h"
#include "util.h"

static int ok(const char *s) {
    Json j;
    int rc = json_parse(&j, s, strlen(s), "t");
    json_free(&j);
    return rc == 0;
}

/* Fails to parse and the message contains want. */
static int bad(const char *s, size_t n, const char *want) {
    Json j;
    if (json_parse(&j, s, n, "t.json") == 0) {
        json_free(&j);
        printf("  accepted: %.60s\n", s);
        return 0;
    }
    if (!strstr(xerr_msg(), want)) {
        printf("  message %s lacks %s\n", xerr_msg(), want);
        return 0;
    }
    return strncmp(xerr_msg(), "t.json: line ", 13) == 0;
}
#define BAD(s, want) bad(s, strlen(s), want)

static double num(const char *s) {
    Json j;
    if (json_parse(&j, s, strlen(s), "t")) return -12345.0;
    double v = j.type == JSON_NUMBER ? j.num : -12345.0;
    json_free(&j);
    return v;
}

int main(void) {
    /* --- a document with every type --- */
    const char *doc = "{\"a\": 1, \"b\": [true, false, null, -2.5e1, \"x\\ty\"], \"c\": {\"d\": \"\\u00e9\\ud83d\\ude00\"},"
                      " \"a\": 7, \"e\": \"caf\xc3\xa9\", \"z\": \"a\\u0000b\"}";
    Json j;
    CHECK(json_parse(&j, doc, strlen(doc), "doc") == 0, "doc parses: %s", xerr_msg());
    CHECK(j.type == JSON_OBJECT && j.n == 6, "object with 6 members");
    long a = 0;
    CHECK(json_get_int(&j, "a", &a, "doc") == 0 && a == 7, "last duplicate wins (a=%ld)", a);
    const Json *b = json_get(&j, "b");
    CHECK(b && b->type == JSON_ARRAY && b->n == 5, "array of 5");
    CHECK(json_at(b, 0)->type == JSON_TRUE && json_at(b, 1)->type == JSON_FALSE && json_at(b, 2)->type == JSON_NULL,
          "literals");
    CHECK(json_at(b, 3)->type == JSON_NUMBER && json_at(b, 3)->num == -25.0, "number -2.5e1");
    CHECK(strcmp(json_at(b, 4)->str, "x\ty") == 0, "escape \\t");
    CHECK(json_at(b, 5) == NULL, "json_at out of range");
    const char *d = json_get_str(json_get(&j, "c"), "d", "doc");
    CHECK(d && strcmp(d, "\xc3\xa9\xf0\x9f\x98\x80") == 0, "\\u00e9 and a surrogate pair decode to UTF-8");
    CHECK(strcmp(json_get_str(&j, "e", "doc"), "caf\xc3\xa9") == 0, "raw UTF-8 kept");
    const Json *z = json_get(&j, "z");
    CHECK(z && z->len == 3 && z->str[1] == 0 && z->str[2] == 'b', "\\u0000 inside a string (len 3)");
    CHECK(json_get(&j, "missing") == NULL && json_get(b, "a") == NULL, "absent key / not an object -> NULL");
    CHECK(json_get_str(&j, "missing", "doc") == NULL && strstr(xerr_msg(), "doc: missing key missing"),
          "json_get_str missing: %s", xerr_msg());
    CHECK(json_get_str(&j, "a", "doc") == NULL && strstr(xerr_msg(), "a must be a string"), "json_get_str type");
    double dv;
    CHECK(json_get_num(&j, "b", &dv, "doc") != 0 && strstr(xerr_msg(), "b must be a number"), "json_get_num type");
    json_free(&j);

    /* json_get_int rejects fractions */
    const char *f = "{\"x\": 1.5, \"y\": 1e3, \"w\": 1e300}";
    CHECK(json_parse(&j, f, strlen(f), "f") == 0, "f parses");
    long li = 0;
    CHECK(json_get_int(&j, "x", &li, "f") != 0 && strstr(xerr_msg(), "f: x must be an integer"), "1.5 not an int");
    CHECK(json_get_int(&j, "y", &li, "f") == 0 && li == 1000, "1e3 is the int 1000");
    CHECK(json_get_int(&j, "w", &li, "f") != 0, "1e300 does not fit a long");
    json_free(&j);

    /* --- valid documents --- */
    CHECK(ok("0") && ok("-0") && ok("\"\"") && ok("[]") && ok("{}") && ok(" \t\r\n[ ] \n"), "scalars at top level");
    CHECK(ok("[[[[]]]]") && ok("{\"\":{}}") && ok("[1,[2,{\"a\":[3]}]]"), "nesting");
    CHECK(ok("\xEF\xBB\xBF{}"), "a leading BOM is ignored");
    CHECK(ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), "all simple escapes");
    CHECK(num("0") == 0 && num("-0") == 0 && num("12") == 12 && num("-1.25") == -1.25 && num("1E2") == 100 &&
              num("1e+2") == 100 && num("25e-2") == 0.25 && num("0.5") == 0.5,
          "number values");
    CHECK(num("123456789012345678") == 123456789012345678.0, "long integer rounds to nearest double");
    CHECK(num("1e-400") == 0, "underflow to 0 is accepted");

    /* --- invalid documents: every error class --- */
    CHECK(BAD("", "unexpected end of input"), "empty");
    CHECK(BAD("   ", "unexpected end of input"), "whitespace only");
    CHECK(BAD("[1,2", "unterminated array"), "truncated array");
    CHECK(BAD("{\"a\":1", "unterminated object"), "truncated object");
    CHECK(BAD("{\"a\":", "unexpected end of input"), "truncated after colon");
    CHECK(BAD("\"abc", "unterminated string"), "truncated string");
    CHECK(BAD("[1,]", "trailing comma"), "trailing comma array");
    CHECK(BAD("{\"a\":1,}", "trailing comma"), "trailing comma object");
    CHECK(BAD("[1 2]", "',' or ']' expected"), "missing comma");
    CHECK(BAD("{\"a\" 1}", "':' expected"), "missing colon");
    CHECK(BAD("{a:1}", "object key (string) expected"), "unquoted key");
    CHECK(BAD("{1:1}", "object key (string) expected"), "number key");
    CHECK(BAD("[1] x", "unexpected data after the value"), "garbage after value");
    CHECK(BAD("{} {}", "unexpected data after the value"), "two values");
    CHECK(BAD("tru", "invalid literal"), "truncated literal");
    CHECK(BAD("nul", "invalid literal"), "nul");
    CHECK(BAD("True", "unexpected character"), "capitalised literal");
    CHECK(BAD("'a'", "unexpected character"), "single quotes");
    CHECK(BAD("[NaN]", "unexpected character"), "NaN");
    CHECK(BAD("// c\n1", "unexpected character"), "comment");
    CHECK(BAD("01", "leading zero"), "leading zero");
    CHECK(BAD("-01", "leading zero"), "negative leading zero");
    CHECK(BAD("+1", "unexpected character"), "plus sign");
    CHECK(BAD("-", "digit expected"), "lone minus");
    CHECK(BAD("1.", "after '.'"), "1.");
    CHECK(BAD(".5", "unexpected character"), ".5");
    CHECK(BAD("1e", "exponent"), "1e");
    CHECK(BAD("1e+", "exponent"), "1e+");
    CHECK(BAD("0x10", "unexpected data"), "hex");
    CHECK(BAD("1e400", "out of range"), "overflow");
    CHECK(BAD("-1e400", "out of range"), "negative overflow");
    CHECK(BAD("\"a\\x\"", "invalid escape"), "bad escape");
    CHECK(BAD("\"\\u12G4\"", "bad hex digit"), "bad hex digit");
    CHECK(BAD("\"\\u12", "unterminated string"), "truncated \\u");
    CHECK(BAD("\"\\ud800\"", "high surrogate"), "lone high surrogate");
    CHECK(BAD("\"\\ud800x\"", "high surrogate"), "high surrogate then text");
    CHECK(BAD("\"\\ud800\\u0041\"", "high surrogate"), "high surrogate then non-surrogate");
    CHECK(BAD("\"\\ud800\\ud800\"", "high surrogate"), "two high surrogates");
    CHECK(BAD("\"\\udc00\"", "lone low surrogate"), "lone low surrogate");
    CHECK(BAD("\"a\tb\"", "control character"), "raw tab in string");
    CHECK(BAD("\"a\nb\"", "control character"), "raw newline in string");
    CHECK(bad("\"a\0b\"", 5, "control character"), "raw NUL in string");
    CHECK(bad("[1]\0", 4, "unexpected data"), "NUL after value");
    CHECK(BAD("\"\xc3\"", "invalid UTF-8"), "truncated UTF-8");
    CHECK(BAD("\"\xc0\xaf\"", "invalid UTF-8"), "overlong UTF-8");
    CHECK(BAD("\"\xed\xa0\x80\"", "invalid UTF-8"), "UTF-8 encoded surrogate");
    CHECK(BAD("\"\xf4\x90\x80\x80\"", "invalid UTF-8"), "above U+10FFFF");
    CHECK(BAD("\"\xff\"", "invalid UTF-8"), "byte 0xFF");
    CHECK(BAD("\"\x80\"", "invalid UTF-8"), "stray continuation byte");
    CHECK(BAD("\xEF\xBB", "unexpected character"), "partial BOM");

    /* positions: line and column (columns count characters) */
    CHECK(BAD("{\n  \"a\": 1,\n  \"b\": x\n}", "line 3, column 8:"), "line/column: %s", xerr_msg());
    CHECK(BAD("[\"\xc3\xa9\xc3\xa9\", x]", "line 1, column 8:"), "column counts characters: %s", xerr_msg());

    /* depth limit: 512 levels parse, 513 do not (and no stack overflow at 100000) */
    {
        size_t n = 100000;
        char *s = xmalloc(2 * n + 1);
        for (size_t i = 0; i < n; i++) { s[i] = '['; s[2 * n - 1 - i] = ']'; }
        s[2 * n] = 0;
        CHECK(bad(s, 2 * n, "nesting too deep"), "100000 levels refused");
        CHECK(bad(s + n - 513, 2 * 513, "nesting too deep"), "513 levels refused");
        CHECK(json_parse(&j, s + n - 512, 2 * 512, "t") == 0, "512 levels accepted");
        json_free(&j);
        CHECK(bad(s, n, "nesting too deep"), "unclosed deep array");
        free(s);
    }

    /* no text past len is read: a number at the very end of an unterminated buffer */
    {
        char *s = xmalloc(3);
        memcpy(s, "123", 3);
        CHECK(json_parse(&j, s, 3, "t") == 0 && j.num == 123, "number ending at len");
        json_free(&j);
        free(s);
    }

    /* a large document: 200k objects, timed */
    {
        StrBuf sb = {0};
        sb_puts(&sb, "{\"data\": [");
        for (int i = 0; i < 200000; i++)
            sb_printf(&sb, "%s{\"id\": \"q%d\", \"answer_start\": %d, \"text\": \"word \\u00e9 %d\"}", i ? "," : "", i,
                      i * 3, i);
        sb_puts(&sb, "]}");
        double t0 = now_seconds();
        int rc = json_parse(&j, sb.data, sb.len, "big");
        double dt = now_seconds() - t0;
        const Json *data = json_get(&j, "data");
        long as = 0;
        CHECK_REPORT(rc == 0 && data && data->n == 200000 &&
                         json_get_int(json_at(data, 199999), "answer_start", &as, "big") == 0 && as == 599997,
                     "parse %.1f MB in %.3f s", sb.len / 1e6, dt);
        json_free(&j);
        sb_free(&sb);
    }

    /* json_parse_file names the file */
    CHECK(json_parse_file(&j, "/nonexistent/x.json") != 0 && strstr(xerr_msg(), "/nonexistent/x.json"),
          "missing file: %s", xerr_msg());
    return test_summary("json");
}
