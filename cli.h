/* cli.h: the xlmr subcommands. Each takes argv as main does (argv[0] is the
 * command name), parses its options with opts_parse() and returns the exit status. */
#ifndef XLMR_CLI_H
#define XLMR_CLI_H

int cmd_init(int argc, char **argv);       /* cmd_model.c */
int cmd_embed(int argc, char **argv);      /* cmd_model.c */
int cmd_tokenize(int argc, char **argv);   /* tokenizer.c */
int cmd_eval(int argc, char **argv);       /* eval.c */
int cmd_pairs(int argc, char **argv);      /* squad.c */
int cmd_batches(int argc, char **argv);    /* sampler.c */
int cmd_train(int argc, char **argv);      /* train.c */
int cmd_experiment(int argc, char **argv); /* experiment.c */
int cmd_bench(int argc, char **argv);      /* bench.c */

#endif
