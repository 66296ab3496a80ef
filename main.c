/* main.c: the xlmr command — dispatches to the subcommands in cli.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cli.h"
#include "dist.h"
#include "util.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"init", cmd_init, "write a randomly initialised model folder"},
    {"tokenize", cmd_tokenize, "text lines to XLM-R ids, SentencePiece ids or pieces"},
    {"embed", cmd_embed, "text lines to L2-normalised embeddings"},
    {"fill-mask", cmd_fillmask, "text lines with <mask> to the masked-LM head's top-k tokens (JSON)"},
    {"pairs", cmd_pairs, "SQuAD-format files to training pairs (TSV)"},
    {"batches", cmd_batches, "print the batches a sampler draws"},
    {"train", cmd_train, "fine-tune a model folder with InfoNCE"},
    {"corpus", cmd_corpus, "the pretraining text per language + parallel TSV from data/ (no evaluation text)"},
    {"pretrain", cmd_pretrain, "masked-LM (+ TLM) pretraining on text files per language"},
    {"eval", cmd_eval, "XQuAD-R / MLQA-R retrieval: mono, cross, multi, language bias"},
    {"experiment", cmd_experiment, "the size x sampling grid, with report and charts"},
    {"plot", cmd_plot, "a training log as a loss / learning-rate curve (SVG)"},
    {"bench", cmd_bench, "speed: gemm, forward, train, tokenize"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: xlmr COMMAND [options]   (xlmr COMMAND --help for its options)\n\n"
               "Multilingual dense retrieval with XLM-RoBERTa and hybrid batch sampling, in C.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
#if defined(__GLIBC__)
    /* glibc hands large freed blocks back to the kernel (munmap, trimming),
     * so the scratch of every batch and every product would be faulted in and
     * zeroed anew; this keeps freed memory for the next allocation. */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
    dist_init(&argc, &argv); /* xlmr-mpi under mpirun: one rank of the job (dist.h) */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            /* the one check of stdout for every command: output lost to a full
             * disk or a closed pipe is a failure, never a silent success */
            if (stream_flush_checked(stdout, "stdout")) die_xerr();
            if (fclose(stdout) != 0) {
                fprintf(stderr, "xlmr: stdout: write error: %s\n", strerror(errno));
                return 1;
            }
            dist_finalize();
            return rc;
        }
    die("unknown command '%s' (xlmr --help lists them)", argv[1]);
}
