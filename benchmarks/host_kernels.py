"""tinyc's host int8 kernels against CMSIS-NN's portable C, layer shape by layer shape, counted on qemu.

Every distinct conv, depthwise, dense and average-pool layer of the zoo's int8 networks and of the
official MLPerf Tiny models (read in place from ../shared/models/mlperf_tiny when present): tinyc's
count is its emitted layer inside the whole network built for RV32IMC (tinyc.rv32, config cpu) and run
on qemu with -icount shift=0, where minstret counts retired instructions exactly; CMSIS-NN's is its
entry point for that shape (arm_convolve_wrapper_s8 and arm_depthwise_conv_wrapper_s8 with the kernel
their wrappers pick, arm_fully_connected_s8, arm_avgpool_s8; NHWC, top/left pads) in one harness,
built from ../shared/peers/cmsis-nn (never copied: compiled in a temporary directory) for RV32IMC with
tinyc's RV32 flags but -Werror (its sources warn), random data, counted around each call on the same
qemu. Per MAC for conv and dense, per input element for pools. Also the RV32 code size (text) of each
side's kernels as linked. Where the peer is missing it says so and counts tinyc alone. Then the float
<-> int8 boundary at a model's edges (QuantizeLinear and DequantizeLinear on MobileNet's 96x96x3 input),
per element, which the cost model's fit also takes.

    python3 benchmarks/host_kernels.py [--models zoo:kws official:vww] [--peer DIR] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tinyc  # noqa: E402
from tinyc import rv32  # noqa: E402
from tinyc.backends.c.emit import runtime_sources  # noqa: E402
from tinyc.bench.models import MLPERF_DIR, available_models  # noqa: E402
from tinyc.targets import host_cost  # noqa: E402
from tinyc.toolchain import run_tool  # noqa: E402

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "cmsis-nn"
LABEL = "counted on qemu (instructions retired, icount shift=0)"
OPS = ("qconv", "qmatmul", "qavgpool")
PEER_FLAGS = tuple(f for f in rv32.CFLAGS if f != "-Werror")
# what each kernel kind's cost grows with (tinyc.targets.host_cost.host_work's features)
FIT_FEATURES = {"conv": ("mac", "output"), "depthwise": ("mac", "output", "input", "channel"),
                "dense": ("mac", "output", "input"), "pool": ("input", "output"),
                "pool_nonnegative": ("input", "output"), "add": ("output",), "softmax": ("output", "layer"),
                "view": ("layer",), "pad": ("output",), "transpose": ("output",), "space_to_depth": ("output",),
                "quantize": ("output",), "dequantize": ("output",)}
DIANA = ("diana", "digital")  # the zoo's host layers are counted on this config too
BOUNDARY_SHAPE = (1, 3, 96, 96)  # MobileNet's input, where a float model's quantize runs
PEER_DIRS = ("ConvolutionFunctions", "FullyConnectedFunctions", "PoolingFunctions", "NNSupportFunctions")
SYMBOL = re.compile(r"^[0-9a-f]+ ([0-9a-f]+) [tT] (\S+)$", re.M)


def shape_of(g, node) -> dict | None:
    """The layer's geometry (NCHW in tinyc's terms), or None for a layer the table does not cover."""
    if node.op not in OPS:
        return None
    x, y = g.values[node.inputs[0]], g.values[node.outputs[0]]
    a = node.attrs
    if node.op == "qmatmul":
        k, n = g.values[node.inputs[1]].shape
        return {"kind": "dense", "k": int(k), "n": int(n), "macs": int(k * n), "x_zp": int(a["x_zp"])}
    spatial = len(x.shape) - 2
    if spatial not in (1, 2):
        return None
    unit = [1] * (2 - spatial)
    h, w = unit + list(x.shape[2:])
    oh, ow = unit + list(y.shape[2:])
    if node.op == "qavgpool":
        kh, kw = unit + list(a["kernel"])
        return {"kind": "avgpool", "c": int(x.shape[1]), "h": h, "w": w, "kh": kh, "kw": kw, "oh": oh, "ow": ow,
                "macs": int(x.size), "x_zp": int(a["x_zp"])}
    wt = g.values[node.inputs[1]].shape
    kh, kw = unit + list(wt[2:])
    sh, sw = unit + list(a["strides"])
    pt, pl = [0] * (2 - spatial) + list(a["pads"][:spatial])
    depthwise = a["group"] == x.shape[1] == wt[0] and wt[1] == 1
    if a["group"] != 1 and not depthwise:
        return None
    return {"kind": "depthwise" if depthwise else "conv", "c": int(x.shape[1]), "h": h, "w": w, "m": int(wt[0]),
            "kh": kh, "kw": kw, "sh": sh, "sw": sw, "pt": pt, "pl": pl, "oh": oh, "ow": ow,
            "dil": list(a["dilations"]), "macs": int(y.size * np.prod(wt[1:])), "x_zp": int(a["x_zp"])}


def key(s: dict) -> str:
    if s["kind"] == "dense":
        return f"dense {s['k']}->{s['n']}"
    if s["kind"] == "avgpool":
        return f"avgpool {s['c']}x{s['h']}x{s['w']} k{s['kh']}x{s['kw']}"
    return (f"{s['kind']} {s['c']}x{s['h']}x{s['w']} -> {s['m']} k{s['kh']}x{s['kw']} s{s['sh']}x{s['sw']} "
            f"p{s['pt']},{s['pl']}")


def kernel_symbols(flags) -> set[str]:
    """The text symbols of tinyc's int8 kernel sources (what the table's code size counts)."""
    with tempfile.TemporaryDirectory(prefix="tinyc-kernels-") as tmp:
        names = set()
        for name, text in runtime_sources().items():
            (Path(tmp) / name).write_text(text)
        for name in runtime_sources():
            if name.startswith("tinyc_kernels") and name.endswith(".c") and "float" not in name:
                run_tool([rv32.CC, *flags, "-c", name, "-o", name + ".o"], Path(tmp), "compiling tinyc's kernels")
                out = subprocess.run(["riscv64-unknown-elf-nm", "-S", name + ".o"], capture_output=True, text=True,
                                     cwd=tmp, check=True).stdout
                names |= {m.group(2) for m in SYMBOL.finditer(out)}
        return names


def text_bytes(elf: Path, names: set[str]) -> int:
    out = subprocess.run(["riscv64-unknown-elf-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    return sum(int(m.group(1), 16) for m in SYMBOL.finditer(out) if m.group(2) in names)


def measure_tinyc(models: dict, seed: int) -> tuple[dict, dict, list[dict]]:
    """Per distinct shape: tinyc's count (the first layer of that shape met) and where; the kernels' code
    size per model; every host layer's count beside the host cost model's figure for it."""
    shapes, sizes, layers, names = {}, {}, [], kernel_symbols(rv32.CFLAGS)
    for model_id, build in models.items():
        cm = tinyc.compile(build(), target="cpu")
        with tempfile.TemporaryDirectory(prefix="tinyc-hostk-") as tmp:
            _, counts, _ = rv32.run_model(cm, cm.random_inputs(seed), tmp)
            sizes[model_id] = text_bytes(Path(tmp) / rv32.ELF, names)
        layers += host_layers(cm, model_id, counts)
        if model_id.startswith("zoo:"):  # what the host keeps beside the accelerators (the lowered 10x4 conv's moves)
            on_diana = tinyc.compile(build(), target=DIANA[0], config=DIANA[1])
            with tempfile.TemporaryDirectory(prefix="tinyc-hostk-") as tmp:
                _, diana_counts, _ = rv32.run_model(on_diana, on_diana.random_inputs(seed), tmp)
            layers += host_layers(on_diana, f"{model_id} {DIANA[1]}", diana_counts)
        for index, layer in enumerate(cm.report["layers"]):
            node = cm.graph.node(layer["name"])
            s = shape_of(cm.graph, node)
            if s is not None and key(s) not in shapes:
                shapes[key(s)] = {**s, "where": f"{model_id} {layer['name']}", "tinyc": counts[index]}
    return shapes, sizes, layers


def host_layers(cm, model_id: str, counts: dict[int, int]) -> list[dict]:
    """Every layer of cm the host ran (counted on qemu), beside the host cost model's figure for it."""
    rows = []
    for index, layer in enumerate(cm.report["layers"]):
        if index in counts:
            node = cm.graph.node(layer["name"])
            kind, work = host_cost.host_work(cm.graph, node)
            rows.append({"model": model_id, "layer": layer["name"], "kind": kind, "work": work,
                         "counted": counts[index], "modeled": host_cost.host_cycles(cm.graph, node, cm.target.host)})
    return rows


def boundary_model() -> onnx.ModelProto:
    """x -> QuantizeLinear -> DequantizeLinear over BOUNDARY_SHAPE: tinyc's quantize and dequantize."""
    consts = [helper.make_tensor("s", TensorProto.FLOAT, [], [2 ** -7]),
              helper.make_tensor("z", TensorProto.INT8, [], [-1])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(BOUNDARY_SHAPE)) for n in ("x", "y")]
    return helper.make_model(helper.make_graph(nodes, "boundary", io[:1], io[1:], consts),
                             opset_imports=[helper.make_opsetid("", 13)])


def measure_boundary(seed: int) -> list[dict]:
    """The boundary model's host layers, counted on qemu."""
    cm = tinyc.compile(boundary_model(), target="cpu")
    with tempfile.TemporaryDirectory(prefix="tinyc-hostk-") as tmp:
        _, counts, _ = rv32.run_model(cm, cm.random_inputs(seed), tmp)
    return host_layers(cm, "boundary:" + "x".join(map(str, BOUNDARY_SHAPE)), counts)


def fit(layers: list[dict]) -> dict[str, dict[str, float]]:
    """Per kernel kind, the cycles per feature minimizing the squared relative error over the layers
    (what tinyc/targets/diana.py's HOST params hold), over the features that vary within the kind."""
    found = {}
    for kind in sorted({r["kind"] for r in layers}):
        rows = [r for r in layers if r["kind"] == kind]
        feats = FIT_FEATURES.get(kind, ("output", "layer"))
        a = np.array([[r["work"][f] for f in feats] for r in rows], float)
        b = np.array([r["counted"] for r in rows], float)
        coef = np.linalg.lstsq(a / b[:, None], np.ones(len(rows)), rcond=None)[0]
        found[kind] = {f: round(float(c), 2) for f, c in zip(feats, coef)}
    return found


def harness(shapes: list[dict]) -> str:
    """One C program calling CMSIS-NN once per shape, minstret read around each call."""
    big = max(max(s.get("c", 1) * s.get("h", 1) * s.get("w", s.get("k", 1)), s.get("k", 0)) for s in shapes)
    out = max(s.get("m", s.get("c", 0)) * s.get("oh", 1) * s.get("ow", 1) + s.get("n", 0) for s in shapes)
    wts = max(s.get("m", 0) * s.get("kh", 1) * s.get("kw", 1) * (1 if s["kind"] == "depthwise" else s.get("c", 1))
              + s.get("k", 0) * s.get("n", 0) for s in shapes)
    chans = max(max(s.get("m", 0), s.get("n", 0), s.get("c", 0)) for s in shapes)
    calls = []
    for i, s in enumerate(shapes):
        if s["kind"] in ("conv", "depthwise"):
            dw = s["kind"] == "depthwise"
            params = (f"cmsis_nn_dw_conv_params p = {{{-s['x_zp']}, 0, 1, {{{s['sw']}, {s['sh']}}}, "
                      f"{{{s['pl']}, {s['pt']}}}, {{{s['dil'][-1]}, {s['dil'][0]}}}, {{-128, 127}}}};"
                      if dw else
                      f"cmsis_nn_conv_params p = {{{-s['x_zp']}, 0, {{{s['sw']}, {s['sh']}}}, {{{s['pl']}, {s['pt']}}}, "
                      f"{{{s['dil'][-1]}, {s['dil'][0]}}}, {{-128, 127}}}};")
            fn = "arm_depthwise_conv_wrapper_s8" if dw else "arm_convolve_wrapper_s8"
            calls.append(f"""    {{ /* {key(s)} */
        {params}
        cmsis_nn_per_channel_quant_params q = {{mult, shift}};
        cmsis_nn_dims in = {{1, {s['h']}, {s['w']}, {s['c']}}}, f = {{{1 if dw else s['m']}, {s['kh']}, {s['kw']}, {s['m'] if dw else s['c']}}};
        cmsis_nn_dims b = {{1, 1, 1, {s['m']}}}, o = {{1, {s['oh']}, {s['ow']}, {s['m']}}};
        cmsis_nn_context ctx = {{scratch, {fn}_get_buffer_size(&p, &in, &f, &o)}};
        if (ctx.size > (int32_t)sizeof scratch) return 2;
        t0 = instret();
        st = {fn}(&ctx, &p, &q, &in, x, &f, w, &b, bias, &o, y);
        report({i}, instret() - t0, st);
    }}""")
        elif s["kind"] == "dense":
            calls.append(f"""    {{ /* {key(s)} */
        cmsis_nn_fc_params p = {{{-s['x_zp']}, 0, 0, {{-128, 127}}}};
        cmsis_nn_per_tensor_quant_params q = {{1 << 30, -7}};
        cmsis_nn_dims in = {{1, 1, 1, {s['k']}}}, f = {{{s['k']}, 1, 1, {s['n']}}}, b = {{1, 1, 1, {s['n']}}}, o = {{1, 1, 1, {s['n']}}};
        cmsis_nn_context ctx = {{scratch, arm_fully_connected_s8_get_buffer_size(&f)}};
        if (ctx.size > (int32_t)sizeof scratch) return 2;
        t0 = instret();
        st = arm_fully_connected_s8(&ctx, &p, &q, &in, x, &f, w, &b, bias, &o, y);
        report({i}, instret() - t0, st);
    }}""")
        else:
            calls.append(f"""    {{ /* {key(s)} */
        cmsis_nn_pool_params p = {{{{{s['kw']}, {s['kh']}}}, {{0, 0}}, {{-128, 127}}}};
        cmsis_nn_dims in = {{1, {s['h']}, {s['w']}, {s['c']}}}, f = {{1, {s['kh']}, {s['kw']}, 1}}, o = {{1, {s['oh']}, {s['ow']}, {s['c']}}};
        cmsis_nn_context ctx = {{scratch, arm_avgpool_s8_get_buffer_size({s['ow']}, {s['c']})}};
        if (ctx.size > (int32_t)sizeof scratch) return 2;
        t0 = instret();
        st = arm_avgpool_s8(&ctx, &p, &in, x, &f, &o, y);
        report({i}, instret() - t0, st);
    }}""")
    return f"""#include <stdint.h>
#include <stdio.h>
#include "arm_nnfunctions.h"

static int8_t x[{big}], y[{out}], w[{wts}];
static int32_t bias[{chans}], mult[{chans}], shift[{chans}];
static int32_t scratch[16384];

static uint32_t instret(void)
{{
    uint32_t v;
    __asm__ volatile(".option push\\n.option arch, +zicsr\\ncsrr %0, minstret\\n.option pop" : "=r"(v));
    return v;
}}

static void report(int i, uint32_t n, arm_cmsis_nn_status st)
{{
    fprintf(stderr, "cmsis-instret %d %lu %d\\n", i, (unsigned long)n, (int)st);
}}

int main(void)
{{
    uint32_t seed = 12345u, t0;
    arm_cmsis_nn_status st;
    int32_t i;
    for (i = 0; i < (int32_t)sizeof x; i++) x[i] = (int8_t)((seed = seed * 1103515245u + 12345u) >> 24);
    for (i = 0; i < (int32_t)sizeof w; i++) w[i] = (int8_t)((seed = seed * 1103515245u + 12345u) >> 24);
    for (i = 0; i < {chans}; i++) {{ bias[i] = (int32_t)(seed % 2000u) - 1000; mult[i] = 1 << 30; shift[i] = -7; }}
{chr(10).join(calls)}
    return 0;
}}
"""


def measure_peer(peer: Path, shapes: list[dict]) -> tuple[dict[int, int], int]:
    """CMSIS-NN's count per shape index, and the text bytes of its functions the harness links."""
    sources = sorted(p for d in PEER_DIRS for p in (peer / "Source" / d).glob("*.c")
                     if not p.stem.endswith(("_f16", "_f32")))  # the float API is off by default
    with tempfile.TemporaryDirectory(prefix="tinyc-cmsis-") as tmp:
        work = Path(tmp)
        objects = []
        for i, src in enumerate(sources):
            obj = work / f"{i}_{src.stem}.o"
            run_tool([rv32.CC, *PEER_FLAGS, "-ffunction-sections", "-I", str(peer / "Include"), "-c", str(src), "-o",
                      str(obj)], work, f"compiling CMSIS-NN's {src.name}")
            objects.append(obj)
        (work / "harness.c").write_text(harness(shapes))
        run_tool(["riscv64-unknown-elf-ar", "rcs", "libcmsisnn.a", *map(str, objects)], work, "archiving CMSIS-NN")
        elf = work / "cmsis.elf"
        run_tool([rv32.CC, *PEER_FLAGS, *rv32.LDFLAGS, "-Wl,--gc-sections", "-I", str(peer / "Include"), "-o",
                  str(elf), "harness.c", "libcmsisnn.a"], work, "linking the CMSIS-NN harness")
        names = set()
        for obj in objects:
            out = subprocess.run(["riscv64-unknown-elf-nm", "-S", str(obj)], capture_output=True, text=True,
                                 check=True).stdout
            names |= {m.group(2) for m in SYMBOL.finditer(out)}
        proc = run_tool(rv32.qemu_command(elf, []), work, "running the CMSIS-NN harness on qemu", 1200)
        counts = {}
        for i, n, status in re.findall(r"^cmsis-instret (\d+) (\d+) (-?\d+)$", proc.stdout + proc.stderr, re.M):
            if int(status) != 0:
                raise SystemExit(f"CMSIS-NN returned status {status} on {key(shapes[int(i)])}")
            counts[int(i)] = int(n)
        return counts, text_bytes(elf, names)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", help="model ids, e.g. zoo:kws official:vww (default: all available)")
    p.add_argument("--peer", type=Path, default=PEER, help="CMSIS-NN's checkout (default ../shared/peers/cmsis-nn)")
    p.add_argument("--mlperf-dir", type=Path, default=MLPERF_DIR, help="the official MLPerf Tiny models")
    p.add_argument("--seed", type=int, default=0, help="seed of tinyc's random inputs (default 0)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--fit", action="store_true", help="also fit the host cost model's params to the zoo's layers")
    args = p.parse_args(argv)
    models = available_models(args.mlperf_dir)
    # the zoo's networks first: a shape both have is counted on the zoo's layer (the figures)
    chosen = {m: models[m] for m in sorted(args.models or models, key=lambda m: not m.startswith("zoo:")) if m in models}
    shapes, tinyc_sizes, layers = measure_tinyc(chosen, args.seed)
    table = list(shapes.values())
    peer_counts, peer_size = {}, None
    if (args.peer / "Include" / "arm_nnfunctions.h").exists():
        peer_counts, peer_size = measure_peer(args.peer, table)
    else:
        print(f"CMSIS-NN not found at {args.peer}: counting tinyc alone")
    print(f"RV32IMC host kernels, {LABEL}; instr per MAC (pools: per input element)")
    header = f"{'shape':<46} {'first met in':<24} {'tinyc':>7} {'CMSIS-NN':>9} {'ratio':>6}"
    print(header + "\n" + "-" * len(header))
    for i, s in enumerate(table):
        s["tinyc_per_mac"] = s["tinyc"] / s["macs"]
        s["cmsis"] = peer_counts.get(i)
        s["cmsis_per_mac"] = s["cmsis"] / s["macs"] if s["cmsis"] else None
        peer = f"{s['cmsis_per_mac']:9.2f} {s['cmsis_per_mac'] / s['tinyc_per_mac']:6.2f}" if s["cmsis"] else f"{'-':>9} {'-':>6}"
        print(f"{key(s):<46} {s['where'][:24]:<24} {s['tinyc_per_mac']:7.2f} {peer}")
    print(f"\nRV32 text of the kernels as linked: tinyc per model {tinyc_sizes} B"
          + (f"; CMSIS-NN (every entry point of the table) {peer_size} B" if peer_size else ""))
    print("ratio: CMSIS-NN's count over tinyc's (above 1: tinyc needs fewer instructions)")
    boundary = measure_boundary(args.seed)
    for r in boundary:
        print(f"{r['kind']:<10} {r['model']}: {r['counted'] / r['work']['output']:.2f} instr per element")
    zoo = [r for r in layers if r["model"].startswith("zoo:")] + boundary
    for r in zoo:
        r["modeled_over_counted"] = r["modeled"] / r["counted"]
    if zoo:
        worst = max(zoo, key=lambda r: abs(r["modeled_over_counted"] - 1))
        print(f"\nhost cost model (modeled) over qemu's count, {len(zoo)} zoo and boundary layers: "
              f"{min(r['modeled_over_counted'] for r in zoo):.2f}..{max(r['modeled_over_counted'] for r in zoo):.2f}"
              f" (worst {worst['model']} {worst['layer']}, {worst['kind']})")
    fitted = fit(zoo) if args.fit and zoo else None
    for kind, params in (fitted or {}).items():
        print(f"fit {kind:<10} " + ", ".join(f"{f}={c}" for f, c in params.items()))
    if args.json:
        args.json.write_text(json.dumps({"label": LABEL, "cflags": list(rv32.CFLAGS), "peer_cflags": list(PEER_FLAGS),
                                         "shapes": table, "tinyc_text_bytes": tinyc_sizes,
                                         "cmsis_text_bytes": peer_size, "host_layers": layers + boundary,
                                         "fit": fitted},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
