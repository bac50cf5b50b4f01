"""bigcats: the helper package behind the lions-vs-tigers GPU tutorial.

Importing the package is cheap on purpose: TensorFlow is imported only by the modules that need
it, so `python -m bigcats --help` and the setup scripts stay fast.
"""

__version__ = "0.1.0"
