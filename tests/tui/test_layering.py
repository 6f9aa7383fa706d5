"""The admin client and the models of the UI import no Textual (they are usable, and
testable, without a terminal)."""

from __future__ import annotations

import subprocess
import sys

NO_TEXTUAL = ("tui.client", "tui.sse", "tui.feed", "tui.traffic", "tui.cells")
NO_TEXTUAL += ("tui.policy_ops", "tui.policy_history")


def test_models_and_client_import_no_textual() -> None:
    code = "import sys\n" + "".join(f"import {m}\n" for m in NO_TEXTUAL)
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
