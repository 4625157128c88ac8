/* minstret counting for tinyc_counters.h; compiles to nothing unless TINYC_COUNTERS is defined. */
#include "tinyc_counters.h"

#ifdef TINYC_COUNTERS
#include <stdint.h>
#include <stdio.h>

static uint64_t spent[TINYC_COUNTER_LAYERS];
static unsigned char ran[TINYC_COUNTER_LAYERS];
static uint64_t layer_start;
static int layers_seen, bad_layer = -1;

/* RV32 splits the 64-bit counter in two CSRs: re-read when the high half moved between the reads.
 * The .option lines let the CSR reads assemble under -march=rv32imc, which binutils >= 2.38 reads
 * without Zicsr (the picolibc multilibs have no rv32imc_zicsr variant to link with). */
static uint64_t instret(void)
{
    uint32_t hi, lo, again;
    do {
        __asm__ volatile(".option push\n.option arch, +zicsr\n"
                         "csrr %0, minstreth\ncsrr %1, minstret\ncsrr %2, minstreth\n"
                         ".option pop"
                         : "=r"(hi), "=r"(lo), "=r"(again));
    } while (hi != again);
    return (uint64_t)hi << 32 | lo;
}

static int counted(int layer)
{
    if (layer >= 0 && layer < TINYC_COUNTER_LAYERS)
        return 1;
    bad_layer = layer;
    return 0;
}

void tinyc_counter_layer_begin(int layer)
{
    if (counted(layer)) {
        ran[layer] = 1;
        if (layer >= layers_seen)
            layers_seen = layer + 1;
    }
    layer_start = instret(); /* last, so the bookkeeping above is not counted */
}

void tinyc_counter_layer_end(int layer)
{
    const uint64_t now = instret();
    if (counted(layer))
        spent[layer] += now - layer_start;
}

void tinyc_counter_dump(void)
{
    uint64_t total = 0;
    int i;
    if (bad_layer >= 0)
        fprintf(stderr, "tinyc-instret error layer %d is beyond TINYC_COUNTER_LAYERS=%d\n", bad_layer,
                TINYC_COUNTER_LAYERS);
    for (i = 0; i < layers_seen; i++)
        if (ran[i]) {
            fprintf(stderr, "tinyc-instret layer %d %llu\n", i, (unsigned long long)spent[i]);
            total += spent[i];
        }
    fprintf(stderr, "tinyc-instret total %llu\n", (unsigned long long)total);
}
#endif
