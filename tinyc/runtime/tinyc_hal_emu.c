/* The host emulator of tinyc_hal.h: every accelerator's memories, DMA engine and jobs, on the host.
 *
 * Functional: a transfer or job takes effect when it starts (the program order), and jobs compute the
 * contract's arithmetic bit for bit. Checked: every transfer and job access lies inside its declared
 * memory, a job's geometry fits its box, and no transfer touches what an unfinished job uses (or the
 * reverse): a violation prints `tinyc-emu: layer <name> tile <i>: <what>` and exits with status 3.
 * Timed: the host, the DMA engine and each core have a clock; a transfer or job starts at the later of
 * its issue (the host's time) and its engine becoming free, and costs what docs/accelerators.md's cost
 * model says, with the numbers of the target the model passed to tinyc_hal_init. Issuing costs the
 * host nothing; waits move the host's clock on. When $TINYC_PROFILE names a file, each run writes
 * there per layer and in total: cycles, DMA bytes and busy cycles of the host, each core and the DMA.
 * When $TINYC_TRACE names a file, each run writes there every busy interval, for time diagrams:
 * a `cores` line as the profile's, then `<who> <start> <end> <layer index>` (who: 0 the host, then
 * each core, then the DMA), and between them the HAL calls that move or hold data: `dma_in`,
 * `dma_out`, `job` (its output), `l1_hold`, `l1_release`, each `<call> <layer index> <tile> <memory
 * id> <offset> <bytes>`. The L1 plan's checks are in tinyc_hal_emu_l1.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyc_hal_emu.h"

#define MAX_MEMORIES 16
#define MAX_CORES 8
#define MAX_TRANSFERS 16 /* transfers in flight between two waits: the emulated DMA queue */
#define JOB_REGIONS 5    /* input, input2, weights, bias, output */
#define EXIT_VIOLATION 3

/* A byte range of a core memory that an unfinished transfer or job reads or writes. */
typedef struct {
    int32_t memory;
    int64_t begin, end;
    int32_t writes;
} region;

typedef struct {
    uint64_t busy[MAX_CORES + 2]; /* the host, each core, the DMA engine */
    uint64_t dma_bytes;
} counters;

static struct {
    const tinyc_hal_target *t;
    uint8_t *memory[MAX_MEMORIES]; /* allocated at init: sizes are the model's, and the chip's memories
                                      are no part of the deployed program's own data */
    uint64_t host, dma_free, core_free[MAX_CORES];
    region transfers[MAX_TRANSFERS];
    int32_t num_transfers;
    region job[MAX_CORES][JOB_REGIONS];
    int32_t job_running[MAX_CORES];
    const char *layer_name;
    int32_t layer_index;
    uint64_t layer_start;
    counters layer, total;
    FILE *profile;
    FILE *trace;
} emu;

static void put_name(FILE *f, const char *name)
{
    for (; *name; name++)
        fputc(*name > 32 && *name < 127 ? *name : '?', f);
}

void tinyc_emu_fail(int32_t tile, const char *format, ...)
{
    va_list args;
    fputs("tinyc-emu: layer ", stderr);
    put_name(stderr, emu.layer_name ? emu.layer_name : "(none)");
    fprintf(stderr, " tile %ld: ", (long)tile);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(EXIT_VIOLATION);
}

static void fail_init(const char *what, long value)
{
    fprintf(stderr, "tinyc-emu: %s (%ld)\n", what, value);
    exit(EXIT_VIOLATION);
}

static uint64_t later(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* ---------------------------------------------------------------- run and layers */
static void release(void)
{
    int32_t i;
    if (emu.profile)
        fclose(emu.profile);
    if (emu.trace)
        fclose(emu.trace);
    emu.profile = NULL;
    emu.trace = NULL;
    for (i = 0; i < MAX_MEMORIES; i++) {
        free(emu.memory[i]);
        emu.memory[i] = NULL;
    }
}

static FILE *open_log(const char *variable)
{
    const char *path = getenv(variable);
    int32_t i;
    FILE *f;
    if (!path || !*path)
        return NULL;
    f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "tinyc-emu: cannot write the file named by $%s\n", variable);
        exit(EXIT_VIOLATION);
    }
    fprintf(f, "cores %s", emu.t->host);
    for (i = 0; i < emu.t->num_cores; i++)
        fprintf(f, " %s", emu.t->cores[i].name);
    fputs(" dma\n", f);
    return f;
}

void tinyc_hal_init(const tinyc_hal_target *t)
{
    int32_t i;
    release();
    memset(&emu, 0, sizeof emu);
    emu.t = t;
    if (t->num_memories < 0 || t->num_memories > MAX_MEMORIES)
        fail_init("too many core memories for the emulator", (long)t->num_memories);
    if (t->num_cores < 0 || t->num_cores > MAX_CORES)
        fail_init("too many cores for the emulator", (long)t->num_cores);
    if (t->num_cores && t->dma_bytes_per_cycle < 1)
        fail_init("the DMA must move at least a byte per cycle", (long)t->dma_bytes_per_cycle);
    for (i = 0; i < t->num_memories; i++) {
        if (t->memories[i].bytes < 0)
            fail_init("a memory has a negative size", (long)t->memories[i].bytes);
        emu.memory[i] = (uint8_t *)calloc((size_t)t->memories[i].bytes + 1, 1); /* + 1: never calloc(0) */
        if (!emu.memory[i])
            fail_init("out of host memory for a core memory", (long)t->memories[i].bytes);
    }
    for (i = 0; i < t->num_job_kinds; i++) {
        const tinyc_hal_job_kind *k = &t->job_kinds[i];
        if (k->core < 0 || k->core >= t->num_cores || k->computes < TINYC_COMPUTE_CONV || k->computes > TINYC_COMPUTE_ADD
            || k->requantizer < TINYC_REQUANT_SHIFT || k->requantizer > TINYC_REQUANT_ADD || k->reduction < TINYC_REDUCE_ONE
            || k->reduction > TINYC_REDUCE_CHANNELS || (k->weight_bits != 8 && k->weight_bits != 2)
            || k->channel_lanes < 1 || k->row_lanes < 1 || k->column_lanes < 1 || k->reduction_lanes < 1
            || k->shift_min > k->shift_max
            || (k->requantizer == TINYC_REQUANT_SHIFT && (k->shift_min < 0 || k->shift_max > 62))
            || (k->requantizer == TINYC_REQUANT_MULTIPLIER && (k->shift_min < -31 || k->shift_max > 31)))
            fail_init("a job kind is not one the engine runs", (long)i);
    }
    for (i = 0; i < t->num_cores; i++)
        if (t->cores[i].input_bits < 2 || t->cores[i].input_bits > 8)
            fail_init("a core's inputs must have 2 to 8 bits", (long)i);
    emu.profile = open_log("TINYC_PROFILE");
    emu.trace = open_log("TINYC_TRACE");
    tinyc_emu_l1_reset(t);
}

void tinyc_emu_trace_call(const char *call, int32_t tile, int32_t memory, int64_t offset, int64_t bytes)
{
    if (emu.trace)
        fprintf(emu.trace, "%s %ld %ld %ld %lld %lld\n", call, (long)emu.layer_index, (long)tile, (long)memory,
                (long long)offset, (long long)bytes);
}

static void write_counters(const counters *c, uint64_t cycles)
{
    int32_t i;
    fprintf(emu.profile, " %llu %llu", (unsigned long long)cycles, (unsigned long long)c->dma_bytes);
    for (i = 0; i < emu.t->num_cores + 2; i++)
        fprintf(emu.profile, " %llu", (unsigned long long)c->busy[i]);
}

void tinyc_hal_finish(void)
{
    if (emu.profile) {
        FILE *f = emu.profile;
        fputs("total", f);
        write_counters(&emu.total, emu.host);
        fputc('\n', f);
        emu.profile = NULL;
        if (fclose(f) != 0)
            fail_init("cannot write the profile named by TINYC_PROFILE", 0L);
    }
    release();
}

void tinyc_hal_layer_begin(int32_t index, const char *name)
{
    if (emu.layer_name)
        tinyc_emu_fail(0, "layer begins inside layer %ld", (long)emu.layer_index);
    emu.layer_name = name;
    emu.layer_index = index;
    emu.layer_start = emu.host;
    memset(&emu.layer, 0, sizeof emu.layer);
}

void tinyc_hal_layer_end(void)
{
    int32_t core;
    if (emu.num_transfers)
        tinyc_emu_fail(0, "layer ends with %ld DMA transfers unwaited", (long)emu.num_transfers);
    for (core = 0; core < emu.t->num_cores; core++)
        if (emu.job_running[core])
            tinyc_emu_fail(0, "layer ends with a job of core %s unwaited", emu.t->cores[core].name);
    if (emu.profile) {
        fprintf(emu.profile, "layer %ld", (long)emu.layer_index);
        write_counters(&emu.layer, emu.host - emu.layer_start);
        fputc(' ', emu.profile);
        put_name(emu.profile, emu.layer_name ? emu.layer_name : "(none)");
        fputc('\n', emu.profile);
    }
    emu.layer_name = NULL;
}

static void busy(int32_t who, uint64_t start, uint64_t cycles)
{
    emu.layer.busy[who] += cycles;
    emu.total.busy[who] += cycles;
    if (emu.trace && cycles)
        fprintf(emu.trace, "%ld %llu %llu %ld\n", (long)who, (unsigned long long)start,
                (unsigned long long)(start + cycles), (long)emu.layer_index);
}

void tinyc_hal_host_work(uint64_t cycles)
{
    busy(0, emu.host, cycles);
    emu.host += cycles;
}

uint64_t tinyc_hal_cycles(void)
{
    return emu.host;
}

/* ---------------------------------------------------------------- checks */
static void check_memory(int32_t tile, int32_t memory)
{
    if (memory < 0 || memory >= emu.t->num_memories)
        tinyc_emu_fail(tile, "no memory %ld", (long)memory);
}

static region use(int32_t tile, const char *what, int32_t memory, int64_t offset, int64_t bytes, int32_t writes)
{
    region r;
    check_memory(tile, memory);
    if (offset < 0 || bytes < 0 || offset + bytes > emu.t->memories[memory].bytes)
        tinyc_emu_fail(tile, "%s [%lld, %lld) overflows memory %s (%ld B)", what, (long long)offset,
             (long long)(offset + bytes), emu.t->memories[memory].name, (long)emu.t->memories[memory].bytes);
    r.memory = memory;
    r.begin = offset;
    r.end = offset + bytes;
    r.writes = writes;
    return r;
}

static int overlap(const region *a, const region *b)
{
    return a->memory == b->memory && a->begin < b->end && b->begin < a->end && (a->writes || b->writes);
}

static void check_against_jobs(int32_t tile, const region *r, int32_t except_core)
{
    int32_t core, k;
    for (core = 0; core < emu.t->num_cores; core++)
        for (k = 0; emu.job_running[core] && core != except_core && k < JOB_REGIONS; k++)
            if (overlap(r, &emu.job[core][k]))
                tinyc_emu_fail(tile, "[%lld, %lld) of memory %s is in use by the unwaited job of core %s",
                     (long long)r->begin, (long long)r->end, emu.t->memories[r->memory].name,
                     emu.t->cores[core].name);
}

/* ---------------------------------------------------------------- DMA */
static int64_t box_bytes(int32_t tile, const tinyc_hal_box *box)
{
    if (box->count[0] < 0 || box->count[1] < 0 || box->count[2] < 0)
        tinyc_emu_fail(tile, "DMA box with a negative count");
    return (int64_t)box->count[0] * box->count[1] * box->count[2];
}

static void transfer(int32_t tile, const region *r)
{
    const uint64_t bytes = (uint64_t)(r->end - r->begin);
    const uint64_t cycles = (uint64_t)emu.t->dma_setup_cycles
                            + (uint64_t)tinyc_emu_ceil_div((int64_t)bytes, emu.t->dma_bytes_per_cycle);
    check_against_jobs(tile, r, -1);
    if (emu.num_transfers == MAX_TRANSFERS)
        tinyc_emu_fail(tile, "more than %d DMA transfers in flight", MAX_TRANSFERS);
    emu.transfers[emu.num_transfers++] = *r;
    busy(emu.t->num_cores + 1, later(emu.host, emu.dma_free), cycles);
    emu.dma_free = later(emu.host, emu.dma_free) + cycles;
    emu.layer.dma_bytes += bytes;
    emu.total.dma_bytes += bytes;
}

/* Copies a box between L2 (strided) and a core memory (dense), either way. */
static void copy_box(const tinyc_hal_box *box, uint8_t *dst, const uint8_t *src, int from_l2)
{
    int32_t p, r;
    for (p = 0; p < box->count[0]; p++)
        for (r = 0; r < box->count[1]; r++) {
            const ptrdiff_t l2_at = (ptrdiff_t)p * box->stride[0] + (ptrdiff_t)r * box->stride[1];
            const ptrdiff_t dense_at = ((ptrdiff_t)p * box->count[1] + r) * box->count[2];
            memcpy(dst + (from_l2 ? dense_at : l2_at), src + (from_l2 ? l2_at : dense_at), (size_t)box->count[2]);
        }
}

/* Checks and times one transfer of a box into (writes) or out of a core memory; 0 when it moves nothing. */
static int start_transfer(int32_t tile, const char *what, int32_t memory, int32_t offset, const tinyc_hal_box *box,
                          int32_t writes)
{
    const int64_t bytes = box_bytes(tile, box);
    region r;
    if (bytes == 0)
        return 0;
    r = use(tile, what, memory, offset, bytes, writes);
    if (writes)
        tinyc_emu_l1_check_write(tile, what, memory, r.begin, r.end);
    transfer(tile, &r);
    tinyc_emu_trace_call(writes ? "dma_in" : "dma_out", tile, memory, offset, bytes);
    return 1;
}

void tinyc_hal_dma_in(int32_t tile, int32_t memory, int32_t offset, const void *l2, const tinyc_hal_box *box)
{
    if (start_transfer(tile, "DMA in", memory, offset, box, 1))
        copy_box(box, emu.memory[memory] + offset, (const uint8_t *)l2, 1);
}

void tinyc_hal_dma_out(int32_t tile, void *l2, int32_t memory, int32_t offset, const tinyc_hal_box *box)
{
    if (start_transfer(tile, "DMA out", memory, offset, box, 0))
        copy_box(box, (uint8_t *)l2, emu.memory[memory] + offset, 0);
}

void tinyc_hal_dma_wait(void)
{
    emu.host = later(emu.host, emu.dma_free);
    emu.num_transfers = 0;
}

/* ---------------------------------------------------------------- jobs */
void tinyc_hal_job_start(int32_t core, int32_t tile, const tinyc_hal_job *j)
{
    const tinyc_hal_core *c;
    const tinyc_hal_job_kind *kind;
    int32_t add;
    int64_t box;
    uint64_t cycles;
    region *r;
    int32_t k, t;
    if (core < 0 || core >= emu.t->num_cores)
        tinyc_emu_fail(tile, "no core %ld", (long)core);
    c = &emu.t->cores[core];
    if (j->kind < 0 || j->kind >= emu.t->num_job_kinds || emu.t->job_kinds[j->kind].core != core)
        tinyc_emu_fail(tile, "job of kind %ld, which core %s does not declare", (long)j->kind, c->name);
    kind = &emu.t->job_kinds[j->kind];
    add = kind->computes == TINYC_COMPUTE_ADD;
    if (emu.job_running[core])
        tinyc_emu_fail(tile, "job starts while the previous job of core %s is unwaited", c->name);
    tinyc_emu_check_job(tile, c, kind, j);
    box = (int64_t)j->in_c * j->in_h * j->in_w;
    r = emu.job[core];
    r[0] = use(tile, "job input", c->activations, j->input, box, 0);
    r[1] = use(tile, "job input2", c->activations, add ? j->input2 : 0, add ? box : 0, 0);
    r[2] = use(tile, "job weights", c->weights, add ? 0 : j->weights, tinyc_emu_weight_bytes(kind, j), 0);
    r[3] = use(tile, "job bias", c->weights, j->bias < 0 ? 0 : j->bias, tinyc_emu_channel_bytes(kind, j), 0);
    r[4] = use(tile, "job output", c->activations, j->output, (int64_t)j->out_c * j->out_h * j->out_w, 1);
    tinyc_emu_l1_check_write(tile, "job output", c->activations, r[4].begin, r[4].end);
    tinyc_emu_trace_call("job", tile, c->activations, r[4].begin, r[4].end - r[4].begin);
    for (k = 0; k < JOB_REGIONS; k++) {
        for (t = 0; t < emu.num_transfers; t++)
            if (overlap(&r[k], &emu.transfers[t]))
                tinyc_emu_fail(tile, "job uses [%lld, %lld) of memory %s while a DMA transfer to or from it is unwaited",
                     (long long)r[k].begin, (long long)r[k].end, emu.t->memories[r[k].memory].name);
        check_against_jobs(tile, &r[k], core);
    }
    tinyc_emu_compute(tile, c, kind, j, emu.memory[c->activations], emu.memory[c->weights]);
    cycles = tinyc_emu_job_cycles(c, kind, j);
    busy(1 + core, later(emu.host, emu.core_free[core]), cycles);
    emu.core_free[core] = later(emu.host, emu.core_free[core]) + cycles;
    emu.job_running[core] = 1;
}

void tinyc_hal_job_wait(int32_t core)
{
    if (core < 0 || core >= emu.t->num_cores)
        tinyc_emu_fail(0, "no core %ld", (long)core);
    emu.host = later(emu.host, emu.core_free[core]);
    emu.job_running[core] = 0;
}
