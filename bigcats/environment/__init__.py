"""Environment tools: what the machine is and what to install (machine, setup_plan,
backends), whether it works (doctor, tf_errors, startup_log), and Jupyter (jupyter_hooks,
tutorial). It imports nothing from the lesson or the benchmark, and `machine` and `setup_plan`
only the standard library: setup runs them before anything is installed
(docs/package.md#the-three-parts-and-their-arrows).
"""
