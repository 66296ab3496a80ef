/* logplot.c: training-log curves (see logplot.h). */
#include "logplot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "svgchart.h"

typedef struct {
    double *v;
    int n, cap;
} Col;

static void col_push(Col *c, double x) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->v = xrealloc(c->v, (size_t)c->cap * sizeof *c->v);
    }
    c->v[c->n++] = x;
}

/* The columns of the log: per step (step, loss, lr), per evaluation (step, dev_loss, dev_map). */
typedef struct {
    Col step, loss, lr, ev_step, dev_loss, dev_map;
} Curves;

static double num_or_nan(const Json *o, const char *key) {
    const Json *v = json_get(o, key);
    return v && v->type == JSON_NUMBER ? v->num : NAN;
}

static int read_log(const char *path, Curves *c) {
    char *text;
    size_t len;
    if (read_file(path, &text, &len)) return -1;
    int rc = 0, line = 0;
    for (char *p = text, *end = text + len; p < end && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        if (n) {
            StrBuf name = {0};
            sb_printf(&name, "%s, log line %d", path, line);
            Json j;
            rc = json_parse(&j, p, n, name.data);
            sb_free(&name);
            if (rc == 0) {
                double step = num_or_nan(&j, "step");
                if (j.type != JSON_OBJECT || isnan(step)) rc = xerr("%s: line %d: not a log record with a \"step\"", path, line);
                else if (json_get(&j, "loss")) {
                    col_push(&c->step, step);
                    col_push(&c->loss, num_or_nan(&j, "loss"));
                    col_push(&c->lr, num_or_nan(&j, "lr"));
                } else if (json_get(&j, "dev_map") || json_get(&j, "dev_loss")) {
                    col_push(&c->ev_step, step);
                    col_push(&c->dev_loss, num_or_nan(&j, "dev_loss"));
                    col_push(&c->dev_map, num_or_nan(&j, "dev_map"));
                }
                json_free(&j);
            }
        }
        p += n + 1;
    }
    free(text);
    if (rc == 0 && c->step.n == 0) rc = xerr("%s: no training steps in the log", path);
    return rc;
}

/* Exponential moving average (0.9) of the loss: the trend under the per-batch noise. */
static double *smooth(const Col *y) {
    double *s = xmalloc((size_t)(y->n ? y->n : 1) * sizeof *s), m = NAN;
    for (int i = 0; i < y->n; i++) {
        if (!isnan(y->v[i])) m = isnan(m) ? y->v[i] : 0.9 * m + 0.1 * y->v[i];
        s[i] = m;
    }
    return s;
}

static void draw(const Curves *c, const char *title, StrBuf *sb) {
    int have_map = 0;
    for (int i = 0; i < c->dev_map.n; i++) have_map |= !isnan(c->dev_map.v[i]);
    int panels = 2 + have_map;
    double pw = 380, ph = 320, W = pw * panels + 20, H = ph + 70;
    svg_begin(sb, W, H, title);
    double *ema = smooth(&c->loss);
    SvgSeries loss[3] = {
        {"training loss", c->step.v, c->loss.v, NULL, c->step.n, 0, 1},
        {"training loss (EMA 0.9)", c->step.v, ema, NULL, c->step.n, 0, 2},
        {"dev loss", c->ev_step.v, c->dev_loss.v, NULL, c->ev_step.n, 1, 3},
    };
    SvgPanel p = {"Loss (InfoNCE)", "step", "loss", 10, 30, pw, ph, 0, 0, 1};
    svg_line_panel(sb, &p, loss, c->ev_step.n ? 3 : 2);
    SvgSeries lr = {"learning rate", c->step.v, c->lr.v, NULL, c->step.n, 0, 1};
    SvgPanel q = {"Learning rate", "step", "lr", 10 + pw, 30, pw, ph, 0, 0, 1};
    svg_line_panel(sb, &q, &lr, 1);
    if (have_map) {
        SvgSeries map = {"dev mAP", c->ev_step.v, c->dev_map.v, NULL, c->ev_step.n, 1, 3}; /* the dev colour */
        SvgPanel r = {"Dev mAP", "step", "mAP", 10 + 2 * pw, 30, pw, ph, 0, 0, 1};
        svg_line_panel(sb, &r, &map, 1);
    }
    static const char *const names[3] = {"training loss", "EMA 0.9", "dev loss / mAP"};
    svg_legend(sb, names, c->ev_step.n ? 3 : 2, 60, H - 14);
    svg_end(sb);
    free(ema);
}

static void curves_free(Curves *c) {
    Col *cols[6] = {&c->step, &c->loss, &c->lr, &c->ev_step, &c->dev_loss, &c->dev_map};
    for (int i = 0; i < 6; i++) free(cols[i]->v);
}

int logplot_svg(const char *path, StrBuf *sb, int *steps) {
    Curves c = {0};
    int rc = read_log(path, &c);
    if (rc == 0) {
        StrBuf title = {0};
        sb_printf(&title, "Training log %s: %d steps", path, c.step.n);
        draw(&c, title.data, sb);
        sb_free(&title);
        if (steps) *steps = c.step.n;
    }
    curves_free(&c);
    return rc;
}

int logplot_write(const char *path, const char *svg_path) {
    StrBuf sb = {0};
    int rc = logplot_svg(path, &sb, NULL);
    if (rc == 0) rc = write_file_atomic(svg_path, sb.data, sb.len);
    sb_free(&sb);
    return rc;
}
