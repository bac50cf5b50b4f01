"""Benchmark: how fast the lesson's code trains and reads photos (measure), against baselines
kept only to compare with (the 2022 recipe's model, the per-photo augmentation). It may use the
lesson and the environment; nothing uses it but the command line
(docs/package.md#the-three-parts-and-their-arrows).
"""
