/* svgchart.c: SVG line charts (see svgchart.h). Coordinates are computed
 * here; the text is plain SVG 1.1 that browsers, rsvg and Inkscape show. */
#include "svgchart.h"

#include <math.h>
#include <stdio.h>

static const char *const colors[] = {"#4878d0", "#ee854a", "#6acc64", "#d65f5f", "#956cb4", "#8c613c", "#797979"};
#define N_COLORS (int)(sizeof colors / sizeof *colors)

const char *svg_color(int i) { return colors[(i < 0 ? -i : i) % N_COLORS]; }

void svg_escape(StrBuf *sb, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
            case '&': sb_puts(sb, "&amp;"); break;
            case '<': sb_puts(sb, "&lt;"); break;
            case '>': sb_puts(sb, "&gt;"); break;
            case '"': sb_puts(sb, "&quot;"); break;
            default:
                if ((unsigned char)*s >= 0x20 || *s == '\t') sb_append(sb, s, 1); /* no control chars in XML */
        }
    }
}

void svg_begin(StrBuf *sb, double W, double H, const char *title) {
    sb_printf(sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                  "font-family=\"sans-serif\" font-size=\"13\">\n",
              W, H, W, H);
    sb_printf(sb, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
    sb_puts(sb, "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">");
    svg_escape(sb, title);
    sb_puts(sb, "</text>\n");
}

void svg_end(StrBuf *sb) { sb_puts(sb, "</svg>\n"); }

void svg_legend(StrBuf *sb, const char *const *names, int n, double x, double y) {
    for (int i = 0; i < n; i++) {
        double xi = x + i * 130;
        sb_printf(sb, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", xi, y - 10, svg_color(i));
        sb_printf(sb, "<text x=\"%.0f\" y=\"%.0f\">", xi + 16, y);
        svg_escape(sb, names[i]);
        sb_puts(sb, "</text>\n");
    }
}

int svg_ticks(double lo, double hi, int logx, double *ticks, int max_ticks) {
    int n = 0;
    if (!(hi > lo) || max_ticks < 1) return 0;
    if (logx) {
        static const double mult[3] = {1, 2, 5};
        int e0 = (int)floor(log10(lo)), e1 = (int)ceil(log10(hi));
        int dense = log10(hi / lo) <= 2.5; /* few decades: 1, 2, 5 in each */
        for (int e = e0; e <= e1; e++)
            for (int k = 0; k < (dense ? 3 : 1); k++) {
                double v = mult[k] * pow(10, e);
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9) && n < max_ticks) ticks[n++] = v;
            }
        return n;
    }
    double raw = (hi - lo) / (max_ticks > 1 ? max_ticks - 1 : 1), p = pow(10, floor(log10(raw))), step = 10 * p;
    static const double m[3] = {1, 2, 5};
    for (int i = 0; i < 3; i++)
        if (m[i] * p >= raw) {
            step = m[i] * p;
            break;
        }
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && n < max_ticks; v += step)
        ticks[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    return n;
}

/* The data's range over every series, error bars included. */
static void data_range(const SvgPanel *p, const SvgSeries *s, int ns, double r[4]) {
    r[0] = r[2] = INFINITY;
    r[1] = r[3] = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i], e = s[k].err && !isnan(s[k].err[i]) ? fabs(s[k].err[i]) : 0;
            if (isnan(x) || isnan(y) || isinf(x) || isinf(y) || (p->logx && !(x > 0))) continue;
            if (x < r[0]) r[0] = x;
            if (x > r[1]) r[1] = x;
            if (y - e < r[2]) r[2] = y - e;
            if (y + e > r[3]) r[3] = y + e;
        }
    if (r[0] > r[1]) r[0] = p->logx ? 1 : 0, r[1] = p->logx ? 10 : 1; /* no data: an empty axis */
    if (r[2] > r[3]) r[2] = 0, r[3] = 1;
    if (p->zero_line && r[2] > 0) r[2] = 0;
    if (p->zero_line && r[3] < 0) r[3] = 0;
    if (r[0] == r[1]) r[0] = p->logx ? r[0] / 2 : r[0] - 1, r[1] = p->logx ? r[1] * 2 : r[1] + 1;
    if (p->logx) r[0] /= 1.3, r[1] *= 1.3; /* room for the end points' markers */
    double pad = (r[3] - r[2]) * 0.08;
    if (pad == 0) pad = fabs(r[3]) * 0.1 + 1e-3;
    r[2] -= pad;
    r[3] += pad;
}

static void fmt_tick(char *buf, size_t n, double v, int logx, int integer) {
    double a = fabs(v);
    if (logx && a >= 1e6) snprintf(buf, n, "%gM", v / 1e6);
    else if (logx && a >= 1e3) snprintf(buf, n, "%gk", v / 1e3);
    else if (integer) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%.3g", v);
}

static void axes(StrBuf *sb, const SvgPanel *p, const double r[4], double L, double R, double T, double B) {
    double ticks[16];
    char lab[32];
#define PX(v) (p->logx ? L + (log10(v) - log10(r[0])) / (log10(r[1]) - log10(r[0])) * (R - L) : L + ((v)-r[0]) / (r[1] - r[0]) * (R - L))
#define PY(v) (B - ((v)-r[2]) / (r[3] - r[2]) * (B - T))
    int n = svg_ticks(r[2], r[3], 0, ticks, 7);
    for (int i = 0; i < n; i++) {
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, PY(ticks[i]), R,
                  PY(ticks[i]));
        fmt_tick(lab, sizeof lab, ticks[i], 0, 0);
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n", L - 4,
                  PY(ticks[i]) + 4, lab);
    }
    n = svg_ticks(r[0], r[1], p->logx, ticks, 12);
    for (int i = 0; i < n; i++) {
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", PX(ticks[i]), B,
                  PX(ticks[i]), B + 4);
        fmt_tick(lab, sizeof lab, ticks[i], p->logx, p->integer_x);
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n", PX(ticks[i]),
                  B + 16, lab);
    }
    sb_printf(sb, "<path d=\"M%.1f %.1fV%.1fH%.1f\" stroke=\"#333\" fill=\"none\"/>\n", L, T, B, R);
    if (p->zero_line && r[2] < 0 && r[3] > 0)
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>\n",
                  L, PY(0.0), R, PY(0.0));
}

void svg_line_panel(StrBuf *sb, const SvgPanel *p, const SvgSeries *s, int ns) {
    double L = p->x0 + 56, R = p->x0 + p->w - 10, T = p->y0 + 26, B = p->y0 + p->h - 40, r[4];
    data_range(p, s, ns, r);
    sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-weight=\"bold\">", (L + R) / 2, p->y0 + 16);
    svg_escape(sb, p->title);
    sb_puts(sb, "</text>\n");
    axes(sb, p, r, L, R, T, B);
    sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">", (L + R) / 2, B + 32);
    svg_escape(sb, p->xlabel);
    sb_printf(sb, "</text>\n<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">",
              p->x0 + 12, (T + B) / 2);
    svg_escape(sb, p->ylabel);
    sb_puts(sb, "</text>\n");
    for (int k = 0; k < ns; k++) {
        const char *c = svg_color(s[k].color ? s[k].color - 1 : k);
        StrBuf path = {0};
        int pen = 0;
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (isnan(x) || isnan(y) || isinf(x) || isinf(y) || (p->logx && !(x > 0))) {
                pen = 0; /* a gap in the data breaks the line */
                continue;
            }
            sb_printf(&path, "%s%.1f %.1f", pen ? "L" : "M", PX(x), PY(y));
            pen = 1;
            double e = s[k].err && !isnan(s[k].err[i]) ? fabs(s[k].err[i]) : 0;
            if (e > 0)
                sb_printf(sb, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"%s\" fill=\"none\"/>\n",
                          PX(x), PY(y - e), PY(y + e), PX(x) - 4, PY(y - e), PX(x) + 4, PX(x) - 4, PY(y + e),
                          PX(x) + 4, c);
            if (s[k].markers) {
                sb_printf(sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", PX(x), PY(y), c);
                svg_escape(sb, s[k].name);
                sb_printf(sb, ": %.4g at %.4g", y, x);
                if (e > 0) sb_printf(sb, " (± %.4g)", e);
                sb_puts(sb, "</title></circle>\n");
            }
        }
        if (path.len)
            sb_printf(sb, "<path d=\"%s\" stroke=\"%s\" stroke-width=\"1.5\" fill=\"none\"/>\n", path.data, c);
        sb_free(&path);
    }
#undef PX
#undef PY
}
