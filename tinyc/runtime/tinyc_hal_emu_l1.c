/* The emulator's L1 plan checks (tinyc_hal_emu.c calls them): the tensors layers leave in a core's
 * memory for later layers (tinyc_hal_l1_hold) until their last reader is done (tinyc_hal_l1_release).
 * Two held tensors never overlap, and no DMA transfer or job writes over a held tensor: a plan that
 * places a live tensor where another layer writes fails with `tinyc-emu: layer <name> tile <i>: ...`. */
#include <stddef.h>

#include "tinyc_hal_emu.h"

#define MAX_HELD 64

typedef struct {
    int32_t memory;
    int64_t begin, end;
} held_tensor;

static struct {
    const tinyc_hal_target *t;
    held_tensor held[MAX_HELD];
    int32_t count;
} l1;

void tinyc_emu_l1_reset(const tinyc_hal_target *t)
{
    l1.t = t;
    l1.count = 0;
}

static const char *memory_name(int32_t memory)
{
    return memory >= 0 && memory < l1.t->num_memories ? l1.t->memories[memory].name : "?";
}

static const held_tensor *overlapping(int32_t memory, int64_t begin, int64_t end)
{
    int32_t i;
    for (i = 0; i < l1.count; i++)
        if (l1.held[i].memory == memory && l1.held[i].begin < end && begin < l1.held[i].end)
            return &l1.held[i];
    return NULL;
}

void tinyc_emu_l1_check_write(int32_t tile, const char *what, int32_t memory, int64_t begin, int64_t end)
{
    const held_tensor *h = begin < end ? overlapping(memory, begin, end) : NULL;
    if (h)
        tinyc_emu_fail(tile, "%s writes [%lld, %lld) of memory %s over the live tensor held at [%lld, %lld)", what,
                       (long long)begin, (long long)end, memory_name(memory), (long long)h->begin, (long long)h->end);
}

void tinyc_hal_l1_hold(int32_t memory, int32_t offset, int32_t bytes)
{
    const held_tensor *h;
    if (memory < 0 || memory >= l1.t->num_memories || offset < 0 || bytes < 1 ||
        (int64_t)offset + bytes > l1.t->memories[memory].bytes)
        tinyc_emu_fail(0, "L1 hold of [%ld, +%ld) outside memory %s", (long)offset, (long)bytes, memory_name(memory));
    h = overlapping(memory, offset, (int64_t)offset + bytes);
    if (h)
        tinyc_emu_fail(0, "L1 hold of [%ld, %lld) of memory %s overlaps the live tensor held at [%lld, %lld)",
                       (long)offset, (long long)offset + bytes, memory_name(memory), (long long)h->begin,
                       (long long)h->end);
    if (l1.count == MAX_HELD)
        tinyc_emu_fail(0, "more than %d tensors held in L1", MAX_HELD);
    l1.held[l1.count].memory = memory;
    l1.held[l1.count].begin = offset;
    l1.held[l1.count].end = (int64_t)offset + bytes;
    l1.count++;
    tinyc_emu_trace_call("l1_hold", -1, memory, offset, bytes);
}

void tinyc_hal_l1_release(int32_t memory, int32_t offset, int32_t bytes)
{
    int32_t i;
    for (i = 0; i < l1.count; i++)
        if (l1.held[i].memory == memory && l1.held[i].begin == offset && l1.held[i].end == (int64_t)offset + bytes) {
            l1.held[i] = l1.held[--l1.count];
            tinyc_emu_trace_call("l1_release", -1, memory, offset, bytes);
            return;
        }
    tinyc_emu_fail(0, "L1 release of [%ld, +%ld) of memory %s, which holds no such tensor", (long)offset, (long)bytes,
                   memory_name(memory));
}
