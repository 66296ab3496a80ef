/* eval.c: placeholder until its module lands. */
#include "cli.h"
#include "util.h"
int cmd_eval(int argc, char **argv) { (void)argc; die("%s: not implemented yet", argv[0]); }
