"""A second opinion: does an independent network see what the first one was made to see?

Lessons `09_gradient_ascent` and `10_fooling_images`. A class visualisation or a fooling
image is made by following one network's gradient, so it convinces that network (its
own probability is near 1) whether or not it looks like the class: it may only exploit
that network's quirks. A network trained separately (the kit's judge is
`efficientnet_lite2`, made by the same recipe at another size) has other quirks, so its
probability for the target is a rough, automatic stand-in for "would a person recognise
it". It looks at random crops (a side of 0.6-1 of the picture, anywhere), each resized to
its own input size, and reports the mean: a picture has to show the class wherever the
judge looks, not just at one lucky framing.

    verdict = judge(lite2, result.image, "goldfish")
    verdict.probability, verdict.top_class
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..core import checks, memory

__all__ = ["Verdict", "random_crops", "judge"]


@dataclass
class Verdict:
    """What the judging network says of one picture.

    target: the class asked about (its name in the judge's class list); probability:
        the judge's mean probability of `target` over the crops; top_class,
        top_probability: the judge's most probable class, its probabilities averaged over
        the same crops, and that mean; crops: how many crops it looked at;
        per_crop: the probability of `target` in each crop (a float tensor).
    """

    target: str
    probability: float
    top_class: str
    top_probability: float
    crops: int
    per_crop: torch.Tensor

    @property
    def convinced(self) -> bool:
        """True when the target is the judge's own first choice."""
        return self.top_class == self.target

    def __str__(self) -> str:
        return (f"p({self.target}) = {self.probability:.2f}; the judge's first choice: "
                f"{self.top_class} ({self.top_probability:.2f})")


def random_crops(image: torch.Tensor, n: int, size: int, generator: torch.Generator,
                 smallest: float = 0.6) -> torch.Tensor:
    """`n` square crops of a 1 x 3 x H x W image, each with a side of `smallest`..1 of
    the image's shorter side, at a random place, resized to `size`: n x 3 x size x size."""
    n = checks.integer(n, "crops", low=1)
    size = checks.integer(size, "size", low=8)
    smallest = checks.number(smallest, "smallest", low=0.05, high=1.0)
    h, w = image.shape[-2:]
    crops = []
    for _ in range(n):
        side = int(round(min(h, w) * (smallest + (1 - smallest) * float(torch.rand((), generator=generator)))))
        side = max(1, side)
        top = int(torch.randint(0, h - side + 1, (), generator=generator))
        left = int(torch.randint(0, w - side + 1, (), generator=generator))
        crop = image[..., top:top + side, left:left + side]
        crops.append(F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True))
    return torch.cat(crops)


@torch.no_grad()
def judge(net, image: Any, target: Any, *, crops: int = 16, seed: int = 0,
          smallest: float = 0.6, batch_size: int | None = None) -> Verdict:
    """The judging network `net`'s verdict on `image` for class `target` (index or name).

    image: one picture (PIL, array or [0, 1] tensor, any size; a batch's first image is
    judged). The crops are the same for the same `seed`, so two pictures are judged on
    equal terms. `smallest`: the smallest crop's side as a share of the picture's;
    ``smallest=1, crops=1`` judges the whole picture once, pixel grid and all (what a
    fooling image is made for). The network is restored afterwards, as after every engine call.
    """
    index = net.class_index(target)
    if isinstance(image, torch.Tensor) and image.dim() == 4:
        image = image[:1]  # a batch of visualisations: its first picture
    x = checks.pixels(net.as_batch(image, single=True, what="judging"), "image")
    if batch_size is not None:
        batch_size = checks.integer(batch_size, "batch_size", low=1)
    gen = torch.Generator().manual_seed(checks.integer(seed, "seed"))
    batch = random_crops(x, crops, net.input_size, gen, smallest=smallest)
    if batch_size is None:
        batch_size = memory.batch_size(net, size=net.input_size)  # forward only
    with net.guard():
        probs = torch.cat([torch.softmax(net(part), dim=1).cpu() for part in batch.split(batch_size)])
    mean = probs.mean(0)
    top = int(mean.argmax())
    return Verdict(target=net.classes[index], probability=float(mean[index]),
                   top_class=net.classes[top], top_probability=float(mean[top]),
                   crops=int(batch.shape[0]), per_crop=probs[:, index].clone())
