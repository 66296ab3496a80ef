/* cmd_plot.c: `xlmr plot LOG.jsonl` — a training log (train --log) drawn as
 * SVG (logplot.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "logplot.h"
#include "util.h"

int cmd_plot(int argc, char **argv) {
    char *out = NULL;
    StrList pos = {0};
    Opt opts[] = {{"out", OPT_STR, &out, "FILE.svg", "where to write the chart (default: LOG with .svg for .jsonl)"},
                  {0}};
    opts_parse(argc, argv, opts, "xlmr plot LOG.jsonl [--out FILE.svg]",
               "Draws a training log (xlmr train --log) as an SVG: training loss with its moving average and the "
               "dev loss, the learning rate, and the dev mAP, against the step. Written atomically. (xlmr train "
               "--log writes OUT/train_log.svg at the end by itself.)",
               &pos);
    if (pos.n != 1) die("plot: give one log file (xlmr plot LOG.jsonl)");
    const char *log = pos.v[0];
    char *dst = out ? xstrdup(out) : NULL;
    if (!dst) {
        size_t n = strlen(log);
        int jl = n > 6 && !strcmp(log + n - 6, ".jsonl");
        dst = xmalloc(n + 5);
        snprintf(dst, n + 5, "%.*s.svg", (int)(jl ? n - 6 : n), log);
    }
    if (logplot_write(log, dst)) die_xerr();
    fprintf(stderr, "plot: %s\n", dst);
    free(dst);
    free(pos.v);
    return 0;
}
