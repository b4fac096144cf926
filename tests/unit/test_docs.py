"""The documented transaction bodies are the ones the ledger validates."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_transactions_doc_is_current():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs" / "transactions.md").read_text() == mod.render(), "run scripts/gen_docs.py"
