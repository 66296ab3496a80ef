/* cli.h: the xlmr subcommands, the program's side of the library. main.c
 * dispatches to them; each lives in its own cmd_*.c, and no library module
 * includes this header. Each takes argv as main does (argv[0] is the command
 * name), parses its options with opts_parse() and returns the exit status. */
#ifndef XLMR_CLI_H
#define XLMR_CLI_H

int cmd_init(int argc, char **argv);       /* cmd_model.c */
int cmd_embed(int argc, char **argv);      /* cmd_model.c */
int cmd_tokenize(int argc, char **argv);   /* cmd_tokenize.c */
int cmd_eval(int argc, char **argv);       /* cmd_eval.c */
int cmd_pairs(int argc, char **argv);      /* cmd_pairs.c */
int cmd_batches(int argc, char **argv);    /* cmd_batches.c */
int cmd_train(int argc, char **argv);      /* cmd_train.c */
int cmd_experiment(int argc, char **argv); /* cmd_experiment.c */
int cmd_bench(int argc, char **argv);      /* cmd_bench.c */
int cmd_fillmask(int argc, char **argv);   /* cmd_fillmask.c */
int cmd_pretrain(int argc, char **argv);   /* cmd_pretrain.c */
int cmd_corpus(int argc, char **argv);     /* cmd_corpus.c */
int cmd_plot(int argc, char **argv);       /* cmd_plot.c */

#endif
