"""Looking at a network's weights and features: lessons 01-05, and dissection (15).

=====================  ==========================================================
`filters`              01: first-layer filters as RGB tiles
`features`             02, 03: feature vectors of a dataset at a layer
`neighbors`            02: nearest neighbours in feature and pixel space
`embedding`            03: PCA and t-SNE maps, k-NN accuracy
`activations`          04: a layer's feature maps for one image
`patches`              05: maximally activating dataset patches per channel
`dissection`           15: which units are detectors of which concept (IoU with masks)
=====================  ==========================================================

`inspect` imports `core` and `zoo`.
"""
