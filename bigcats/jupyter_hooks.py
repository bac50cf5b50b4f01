"""bigcats: the hook's old name, kept for environments set up before the package had its parts.

Their Jupyter Server config (.venv/etc/jupyter/jupyter_server_config.json) names
`bigcats.jupyter_hooks.strip_tutorial_outputs` as its pre-save hook, and a server whose hook
cannot be imported does not start: JupyterLab keeps working after a `git pull` until setup_env
runs again and writes the new name, `bigcats.environment.jupyter_hooks`.
"""

from bigcats.environment.jupyter_hooks import strip_tutorial_outputs

__all__ = ["strip_tutorial_outputs"]
