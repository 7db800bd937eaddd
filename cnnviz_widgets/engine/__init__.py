"""The PyTorch engine: models, images, datasets and one module per technique.

Pure PyTorch and numpy: nothing here imports ipywidgets or matplotlib, so every
technique can be used (and tested) without a notebook. Every technique speaks one
dialect (docs/ARCHITECTURE.md, "The engine contract"):

    result = verb(net, image, target | layer, channel, *, settings)   # a dataclass, tensors on the CPU
    for progress in verb_iter(..., should_stop=None): ...             # engine.progress.Progress
    result = run_to_end(verb_iter(...))                               # the same as verb(...)

The pieces every technique shares:

==================  ============================================================
`network`           `Network`: the one image entry path (`as_batch`), layers, hooks, the state guard
`models`            the zoo: `load_model`, `build_network`, the online check
`receptive_field`   where a unit looks: analytic and measured fields
`checks`            argument checks with one wording (numpy integers welcome)
`targets`           what is explained or maximised: `ClassLogit`, `Neuron`, ...
`progress`          `Progress`, `run_to_end`
`attribution`       `Attribution`, batching, SmoothGrad over any method
`optimize`          the image-optimisation loop of lessons 09-12, in Lucent's pieces
`blur`              the one Gaussian blur
==================  ============================================================

and one module per technique, listed lesson by lesson in `TECHNIQUES`
(`engine.techniques`): filters, features/neighbors, embedding, activations, patches,
occlusion, saliency, guided, ascent, adversarial, deepdream, inversion. Images,
datasets and the kit's own shapes live in `images`, `data`, `shapes`, `shapes_net`.
"""

from __future__ import annotations

__all__ = ["TECHNIQUES"]


def __getattr__(name: str):
    # The registry imports every technique: loaded on first use, so `import
    # cnnviz_widgets.engine.zoo.models` stays light.
    if name == "TECHNIQUES":
        from .techniques import TECHNIQUES  # deferred: the registry imports every technique

        return TECHNIQUES
    raise AttributeError(f"module 'cnnviz_widgets.engine' has no attribute {name!r}")
