"""Side-by-side benchmarks: the kit against peers (Captum) and against the forward-pass
limit, as ratios measured in one run. ``python -m benchmarks [--quick]``; see README.md."""
