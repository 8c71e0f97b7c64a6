"""Entry point for ``mitmdump -s addon/gateway.py``: builds the addon, nothing else."""

import sys
from pathlib import Path

try:
    from addon.hooks import Gateway
except ModuleNotFoundError:  # run from a checkout that is not installed: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from addon.hooks import Gateway

addons = [Gateway()]
