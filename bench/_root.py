"""Imported first by every script in bench/: puts the project root on sys.path, so that
``python bench/<name>.py`` runs from the root (or anywhere) without PYTHONPATH."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
