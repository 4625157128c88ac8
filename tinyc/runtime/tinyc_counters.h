/* Per-layer instruction counts of the RV32 host, read from the minstret CSR.
 *
 * The model calls tinyc_counter_layer_begin(i) and tinyc_counter_layer_end(i) around the kernel of
 * every layer i that runs on the host (i is the layer's index in the compile report), inside the HAL's
 * layer markers so the HAL's bookkeeping stays out of the counts. Accelerator layers are not counted:
 * where the HAL is the emulator their instructions are the emulator's, not the deployment's. The
 * harness calls tinyc_counter_dump() once the run is over. Only a RISC-V build with -DTINYC_COUNTERS
 * counts: everywhere else these are empty inline functions, so the host build and a plain deployment
 * compute and cost exactly what they would without them.
 */
#ifndef TINYC_COUNTERS_H
#define TINYC_COUNTERS_H

#ifdef TINYC_COUNTERS
#ifndef __riscv
#error "TINYC_COUNTERS reads RISC-V's minstret CSR: build it for RISC-V only"
#endif

/* The table's size; a layer index beyond it is reported by the dump, not counted. */
#ifndef TINYC_COUNTER_LAYERS
#define TINYC_COUNTER_LAYERS 1024
#endif

void tinyc_counter_layer_begin(int layer);
void tinyc_counter_layer_end(int layer);
/* Writes to stderr one line "tinyc-instret layer <i> <count>" per counted layer, in index order, then
 * "tinyc-instret total <count>": the sum over the counted layers. */
void tinyc_counter_dump(void);

#else
static inline void tinyc_counter_layer_begin(int layer) { (void)layer; }
static inline void tinyc_counter_layer_end(int layer) { (void)layer; }
static inline void tinyc_counter_dump(void) {}
#endif

#endif
