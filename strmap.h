/* strmap.h: a string -> int map. Stands alone (util.h only). */
#ifndef XLMR_STRMAP_H
#define XLMR_STRMAP_H

#include <stddef.h>

/* A string -> int map (open addressing; keys are borrowed, not copied). */
typedef struct {
    const char **keys;
    int *vals;
    size_t cap, n;
} StrMap;
/* The value slot of key, added (value 0) when absent; *found says which. */
int *strmap_slot(StrMap *m, const char *key, int *found);
int strmap_get(const StrMap *m, const char *key); /* -1 when absent */
void strmap_free(StrMap *m);

#endif
