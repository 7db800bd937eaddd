"""What every technique stands on: the network wrapper, argument checks, targets, progress.

=====================  ==========================================================
`network`              `Network`: the one image entry path (`as_batch`), layers, hooks,
                       the state guard (`guard`), `predict`
`receptive_field`      where a unit looks: analytic and measured fields
`checks`               argument checks with one wording (numpy integers welcome)
`targets`              what is explained or maximised: `ClassLogit`, `Neuron`, `as_target`
`progress`             `Progress`, `run_to_end`: the shape of every long run
`memory`               batch sizes from a memory budget (`batch_size=None`)
`cache`                one weak cache per network (`cache_for`, `clear_caches`): image
                       costs, spatial layers, feature and patch scans
`blur`                 the engine's one Gaussian blur
`threads`              torch's threads from the CPU share the process has (cgroup quota,
                       affinity), set on the first `load_model`
`images`               decoding untrusted files (`load_image`, Pillow's bomb guard on),
                       `as_pil`, `image_to_array`
=====================  ==========================================================

Nothing in `core` imports another folder of the engine.
"""
