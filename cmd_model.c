/* cmd_model.c: placeholder until its module lands. */
#include "cli.h"
#include "util.h"
int cmd_init(int argc, char **argv) { (void)argc; die("%s: not implemented yet", argv[0]); }
int cmd_embed(int argc, char **argv) { (void)argc; die("%s: not implemented yet", argv[0]); }
