"""bigcats: the helper package behind the lions-vs-tigers GPU tutorial, in three parts.

- `bigcats.lesson`: the code the notebooks teach and the command line reuses (photos, augmentation,
  the network, training, evaluation, plots);
- `bigcats.environment`: the environment's tools (machine facts, setup's plan, Keras' backends,
  the doctor, error explanations, start-up noise, Jupyter);
- `bigcats.benchmark`: speed measurements and the baselines they compare against;

and the command line, `python -m bigcats` (`__main__`), on top. Arrows point one way: the command
line -> benchmark -> lesson -> environment (docs/package.md#the-three-parts-and-their-arrows; import-linter
checks them). Importing the package is cheap on purpose: TensorFlow is imported only by the
modules that need it, so `python -m bigcats --help` and the setup scripts stay fast.
"""

__version__ = "0.1.0"

from bigcats.environment.backends import use_saved_choice

# setup's choice of Keras backend for this environment (TensorFlow, or PyTorch where only it
# reaches the GPU), unless KERAS_BACKEND is set by hand: before anything imports Keras
use_saved_choice()
