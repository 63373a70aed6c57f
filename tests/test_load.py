"""bench/load.py, briefly: concurrent readers see no error while a model is replaced under them."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readers_see_no_error_while_a_model_is_replaced():
    done = subprocess.run(
        [sys.executable, "bench/load.py", "--seconds", "5", "--readers", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    fields = dict(re.findall(r"(\w+)=(\S+)", last))
    assert last.startswith("load: errors=0 "), f"{last}\n{done.stderr[-2000:]}"
    assert int(fields["queries"]) > 0 and int(fields["writes"]) > 0, last
