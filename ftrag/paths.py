"""Where the book keeps its data and the results that labs hand to each other."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
# Labs write measured numbers here; later labs and the cost model read them back.
RESULTS = Path(os.environ.get("FTRAG_RESULTS", ROOT / "results"))
