"""bigcats: the helper package behind the lions-vs-tigers GPU tutorial.

Importing the package is cheap on purpose: TensorFlow is imported only by the modules that need
it, so `python -m bigcats --help` and the setup scripts stay fast.
"""

__version__ = "0.1.0"

from bigcats.backends import use_saved_choice

# setup's choice of Keras backend for this environment (TensorFlow, or PyTorch where only it
# reaches the GPU), unless KERAS_BACKEND is set by hand: before anything imports Keras
use_saved_choice()
