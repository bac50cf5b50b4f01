"""Lesson: the code the notebooks teach and the command line reuses.

Photos in (fetch, clean, data, synthetic), new framings and looks (augment), the network (model,
transfer), training on the devices there are (devices, train, distributed, saving), and what the
model then does (evaluate, robustness, explain, plots). It may use `bigcats.environment`, never
`bigcats.benchmark` (docs/package.md#the-three-parts-and-their-arrows).
"""
