"""A small residual CNN in plain torch, built for CPU: few, wide-enough 3×3 convs, BN, ReLU."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Block(nn.Module):
    """ResNet basic block; a strided 1×1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, stride), conv_bn(cout, cout, relu=False))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class Net(nn.Module):
    """Stem to 1/4 resolution, then stages of blocks at 1/4, 1/8, 1/16, 1/32; global average pool."""

    def __init__(self, n_classes: int, widths=(24, 32, 64, 128, 256), depths=(1, 2, 2, 1), dropout: float = 0.2):
        super().__init__()
        w0, w1 = widths[0], widths[1]
        self.stem = nn.Sequential(conv_bn(3, w0, 2), conv_bn(w0, w1, 2))
        stages, cin = [], w1
        for i, (w, d) in enumerate(zip(widths[1:], depths)):
            for j in range(d):
                stages.append(Block(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, n_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.stages:  # zero-init the last BN of each residual branch: blocks start as identity
            nn.init.zeros_(m.body[1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


ARCHS = {
    "r10s": dict(widths=(24, 32, 64, 128, 256), depths=(1, 2, 2, 1)),
    "r8xs": dict(widths=(16, 24, 48, 96, 192), depths=(1, 1, 2, 1)),
    "r12": dict(widths=(24, 48, 96, 160, 256), depths=(1, 2, 2, 2)),
}


LITE = {"effl0": 0, "effl1": 1, "effl2": 2}  # EfficientNet-Lite arch names → variant


def build(arch: str, n_classes: int, pretrained: bool = True) -> nn.Module:
    """A network by name; `effl0`/`effl1`/`effl2` are EfficientNet-Lite (ImageNet-initialised when `pretrained`)."""
    if arch in LITE:
        from .effnet import build_lite

        return build_lite(n_classes, pretrained, LITE[arch])
    return Net(n_classes, **ARCHS[arch])
