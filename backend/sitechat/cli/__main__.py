"""``python -m sitechat.cli``."""

import sys

from sitechat.cli import app

sys.exit(app())
