/* svgchart.h: line charts as SVG text — the experiment report's gap-versus-size
 * chart (log x axis, error bars) and `xlmr plot`'s training curves. Stands
 * alone (util.h): it draws numbers. */
#ifndef XLMR_SVGCHART_H
#define XLMR_SVGCHART_H

#include "util.h"

typedef struct {
    const char *name;  /* legend text */
    const double *x, *y;
    const double *err; /* half-height of an error bar per point; may be NULL (NaN: none) */
    int n;             /* points; NaN coordinates are skipped (the line breaks there) */
    int markers;       /* 1: a dot at each point (few points); 0: the line only */
    int color;         /* 1 + a svg_color index; 0: the series' position in the panel */
} SvgSeries;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double x0, y0, w, h; /* the panel's box in the document */
    int logx;            /* log10 x axis (x <= 0 skipped) */
    int zero_line;       /* a dashed line at y = 0 when it is in range */
    int integer_x;       /* tick labels as integers (steps) */
} SvgPanel;

/* The document: <svg> of W x H with a white background and a title; svg_end closes it. */
void svg_begin(StrBuf *sb, double W, double H, const char *title);
void svg_end(StrBuf *sb);
/* One panel: axes, ticks, grid, then each series in colour i (svg_color). */
void svg_line_panel(StrBuf *sb, const SvgPanel *p, const SvgSeries *s, int n_series);
/* A row of legend entries (colour i, names[i]) starting at (x, y). */
void svg_legend(StrBuf *sb, const char *const *names, int n, double x, double y);
const char *svg_color(int i);
/* Text escaped for XML (& < > " and no control characters). */
void svg_escape(StrBuf *sb, const char *s);
/* Tick values across [lo, hi]: at most max_ticks "nice" values (1, 2, 5 x 10^k
 * steps; with logx the powers of ten, with 2 and 5 between when few). Returns the count. */
int svg_ticks(double lo, double hi, int logx, double *ticks, int max_ticks);

#endif
