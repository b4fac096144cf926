"""The documented transaction bodies are the ones the ledger validates."""

from tests.support.scripts import ROOT, load_script


def test_transactions_doc_is_current():
    mod = load_script("gen_docs")
    assert (ROOT / "docs" / "transactions.md").read_text() == mod.render(), "run scripts/gen_docs.py"
