"""The IR's text dump and DOT export: one line per op (its convolutions counted from the ONNX model, the
global average pool lowered to one more), where each op runs, one DOT node per op and one edge per
producer-consumer pair."""
import re

import tinyc
import tinyc.zoo
from tinyc.ir import dump, to_dot


def test_dump_and_dot_of_a_compiled_network():
    model = tinyc.zoo.build("ic", "int8")
    cm = tinyc.compile(model, target="diana", config="digital")
    g = cm.graph
    text = dump(g)
    convs = sum(n.op_type == "Conv" for n in model.graph.node)
    pools = sum(n.op_type in ("GlobalAveragePool", "AveragePool") for n in model.graph.node)
    assert pools == 1 and text.count(" = qconv(") == convs + pools  # ResNet-8's pool: a 1x1 conv on the digital core
    assert len(re.findall(r" on digital$", text, re.M)) == sum(n.placement.core == "digital" for n in g.nodes())
    assert text.splitlines()[0].startswith(f"graph {g.name}(") and text.splitlines()[-1].startswith("  return ")
    dot = to_dot(g)
    assert dot.startswith("digraph ") and dot.rstrip().endswith("}")
    assert len(re.findall(r"\[label=", dot)) == len(g.nodes())
    assert len(re.findall(r" -> ", dot)) == g.nx.number_of_edges()
