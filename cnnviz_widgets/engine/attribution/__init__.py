"""Which pixels a decision depends on: lessons 06-08 and the maps of lesson 13.

=========================  ======================================================
`base`                     `Attribution`, `input_gradient`, `batched_iter`, SmoothGrad
                           over any method (`smoothgrad`, `smoothed`)
`occlusion/`               06: occlusion sensitivity (maps, plan, fills, incremental inference)
`saliency`                 07: the gradient of the class score
`guided`                   08: guided backprop, a neuron's gradient, Adebayo's check
`gradcam`                  13: Grad-CAM and Guided Grad-CAM
`integrated_gradients`     13: Integrated Gradients
`segmentation`             13: GrabCut seeded by a saliency map (Simonyan et al.), two baselines
`methods`                  every method by name with one call shape (`METHODS`): what 13 compares
=========================  ======================================================

`attribution` imports `core`, `zoo` and `inspect`.
"""
