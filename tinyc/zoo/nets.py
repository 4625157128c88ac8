"""The four MLPerf Tiny v1.0 networks, layer for layer as the official trained models.

Geometry (kernels, strides, TF "SAME" pads as tf2onnx wrote them, channels, pooling, softmax) is read off
../shared/models/mlperf_tiny/*.onnx; the official batch-norms are folded, so every conv and dense layer
carries a bias. Inputs are NCHW (the official ones are NHWC behind a Transpose).
"""
from .graph import Net

SAME_S2 = (0, 0, 1, 1)  # TF "SAME" for a 3x3 stride-2 conv on an even size: pad only bottom/right
SAME_3X3 = (1, 1, 1, 1)


def kws(seed: int):
    """DS-CNN keyword spotting: 1x1x49x10 MFCC in, 12 classes out."""
    net = Net("kws_dscnn", seed, [1, 1, 49, 10])
    x = net.conv("input", 1, 64, (10, 4), stride=2, pads=(4, 1, 5, 1))
    for _ in range(4):
        x = net.conv(x, 64, 64, 3, pads=SAME_3X3, group=64, kind="dw")
        x = net.conv(x, 64, 64, 1, kind="pw")
    x = net.flatten(net.avgpool(x, (25, 5)), 64)
    return net.finish(net.softmax(net.dense(x, 64, 12, relu=False)), [1, 12])


def vww(seed: int):
    """MobileNetV1 0.25 visual wake words: 1x3x96x96 image in, 2 classes out."""
    net = Net("vww_mobilenet_v1_025", seed, [1, 3, 96, 96])
    x = net.conv("input", 3, 8, 3, stride=2, pads=SAME_S2)
    cin = 8
    for cout, stride in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
                         (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]:
        x = net.conv(x, cin, cin, 3, stride=stride, pads=SAME_S2 if stride == 2 else SAME_3X3,
                     group=cin, kind="dw")
        x = net.conv(x, cin, cout, 1, kind="pw")
        cin = cout
    x = net.flatten(net.avgpool(x, (3, 3)), 256)
    return net.finish(net.softmax(net.dense(x, 256, 2, relu=False)), [1, 2])


def ic(seed: int):
    """ResNet-8 CIFAR-10: 1x3x32x32 image in, 10 classes out; 1x1 stride-2 conv shortcuts."""
    net = Net("ic_resnet8", seed, [1, 3, 32, 32])
    x = net.conv("input", 3, 16, 3, pads=SAME_3X3)
    cin = 16
    for cout, stride in [(16, 1), (32, 2), (64, 2)]:
        # The official graph computes the shortcut before the main path: keep its node order.
        short = x if stride == 1 else net.conv(x, cin, cout, 1, stride=stride, relu=False)
        y = net.conv(x, cin, cout, 3, stride=stride, pads=SAME_S2 if stride == 2 else SAME_3X3)
        y = net.conv(y, cout, cout, 3, pads=SAME_3X3, relu=False)
        x = net.add(short, y)
        cin = cout
    x = net.flatten(net.avgpool(x, (8, 8)), 64)
    return net.finish(net.softmax(net.dense(x, 64, 10, relu=False)), [1, 10])


def ad(seed: int):
    """ToyADMOS dense autoencoder: 640 log-mel values in, their reconstruction out."""
    net = Net("ad_autoencoder", seed, [1, 640])
    x = "input"
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    for i, (k, n) in enumerate(zip(widths, widths[1:])):
        x = net.dense(x, k, n, relu=i < len(widths) - 2)
    return net.finish(x, [1, 640])


BUILDERS = {"kws": kws, "vww": vww, "ic": ic, "ad": ad}
