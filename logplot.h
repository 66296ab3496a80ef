/* logplot.h: a training log (train --log, JSON lines) drawn as SVG: the
 * training loss with its moving average and the dev loss, the learning rate,
 * and the dev mAP against the step (svgchart.h). `xlmr plot` and the end of
 * `xlmr train --log` use it. */
#ifndef XLMR_LOGPLOT_H
#define XLMR_LOGPLOT_H

#include "util.h"

/* Reads the log at path and appends the chart to sb; *steps gets the number
 * of step records. -1 + xerr("PATH, log line N: ...") on a malformed line or
 * a log without steps. */
int logplot_svg(const char *path, StrBuf *sb, int *steps);
/* logplot_svg, written atomically to svg_path. */
int logplot_write(const char *path, const char *svg_path);

#endif
