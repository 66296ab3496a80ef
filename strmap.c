/* strmap.c: a string -> int hash map with open addressing (strmap.h). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The table indexes by the low bits, and those of FNV-1a never see its high
 * bits: hash64 mixes all of them in. */
static uint64_t str_hash(const char *s) { return hash64(hash_fnv1a(HASH_FNV1A_BASIS, s, strlen(s))); }

int *strmap_slot(StrMap *m, const char *key, int *found) {
    if (2 * (m->n + 1) > m->cap) { /* keep the load under 1/2 */
        StrMap g = {0};
        g.cap = m->cap ? m->cap * 2 : 1024;
        g.keys = xcalloc(g.cap, sizeof(char *));
        g.vals = xcalloc(g.cap, sizeof(int));
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            size_t j = str_hash(m->keys[i]) & (g.cap - 1);
            while (g.keys[j]) j = (j + 1) & (g.cap - 1);
            g.keys[j] = m->keys[i];
            g.vals[j] = m->vals[i];
        }
        g.n = m->n;
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    size_t j = str_hash(key) & (m->cap - 1);
    while (m->keys[j] && strcmp(m->keys[j], key) != 0) j = (j + 1) & (m->cap - 1);
    *found = m->keys[j] != NULL;
    if (!m->keys[j]) {
        m->keys[j] = key;
        m->vals[j] = 0;
        m->n++;
    }
    return &m->vals[j];
}

int strmap_get(const StrMap *m, const char *key) {
    if (!m->cap) return -1;
    size_t j = str_hash(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

void strmap_free(StrMap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
