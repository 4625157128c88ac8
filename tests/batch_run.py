"""Many compiled models run from one executable, so tests and the soak pay the C compiler's start-up and
the link once per batch instead of once per model."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from tinyc import toolchain
from tinyc.backends.c import emit_c


def run_batch(models: list, sanitize: bool = False) -> list[dict]:
    """Run many compiled models from ONE executable: each model re-emitted under a prefix of its own
    (m0_, m1_, ...), compiled once, one harness calling them in turn, one link against the cached runtime.
    models: (CompiledModel, inputs) pairs; returns each model's outputs by name."""
    with tempfile.TemporaryDirectory(prefix="tinyc-batch-") as tmp:
        work = Path(tmp)
        runtime = {n: t for n, t in models[0][0].sources.items() if n.startswith(toolchain.RUNTIME_PREFIX)}
        for name, text in runtime.items():
            (work / name).write_text(text)
        harness = ["#include <stdio.h>", "#include <stdint.h>", "",
                   "static int io(const char *path, void *data, long n, int out)",
                   "{", "    FILE *f = fopen(path, out ? \"wb\" : \"rb\");",
                   "    long done = f ? (long)(out ? fwrite(data, 1, (size_t)n, f) : fread(data, 1, (size_t)n, f)) : -1;",
                   "    if (f)", "        fclose(f);", "    return done != n;", "}", ""]
        body, sources = [], []
        for j, (cm, inputs) in enumerate(models):
            folder = work / f"m{j}"
            folder.mkdir()
            for name, text in emit_c(cm.graph, f"m{j}", cm.target).items():
                if not name.startswith(toolchain.RUNTIME_PREFIX) and name not in ("main.c", "Makefile"):
                    (folder / (f"m{j}.c" if name == "model.c" else name)).write_text(text)
            sources.append(str(folder / f"m{j}.c"))
            g = cm.graph
            harness.append(f"int m{j}_run(const void *const inputs[], void *const outputs[]);")
            ins = [f"m{j}_in{i}" for i in range(len(g.inputs))]
            outs = [f"m{j}_out{i}" for i in range(len(g.outputs))]
            for buf, v in zip(ins + outs, g.inputs + g.outputs):
                harness.append(f"static uint64_t {buf}[{(g.values[v].nbytes + 7) // 8}];")
            harness.append(f"static void *const m{j}_ins[] = {{{', '.join(ins)}}};")
            harness.append(f"static void *const m{j}_outs[] = {{{', '.join(outs)}}};")
            for i, v in enumerate(g.inputs):
                cm.input_array(v, inputs).tofile(work / f"{ins[i]}.bin")
                body.append(f'    if (io("{ins[i]}.bin", {ins[i]}, {g.values[v].nbytes}, 0)) return 1;')
            body.append(f"    if (m{j}_run((const void *const *)m{j}_ins, m{j}_outs)) return 1;")
            body += [f'    if (io("{outs[i]}.bin", {outs[i]}, {g.values[v].nbytes}, 1)) return 1;'
                     for i, v in enumerate(g.outputs)]
        (work / "batch.c").write_text("\n".join(harness + ["", "int main(void)", "{"] + body + ["    return 0;", "}", ""]))
        flags = toolchain.CFLAGS + (toolchain.SANITIZE if sanitize else ())
        objects = toolchain.runtime_objects(runtime, "gcc", flags)
        toolchain.run_tool(["gcc", *flags, "-I", str(work), "-o", "batch", "batch.c", *sources,
                            *map(str, objects), "-lm"], work, "building the batch")
        toolchain.run_tool([str(work / "batch")], work, "running the batch")
        return [{v: np.fromfile(work / f"m{j}_out{i}.bin", np.dtype(cm.graph.values[v].dtype))
                 .reshape(cm.graph.values[v].shape) for i, v in enumerate(cm.graph.outputs)}
                for j, (cm, _) in enumerate(models)]
