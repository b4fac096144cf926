"""UBL 2.1 export: EN 16931 core fields, exact totals, and credit notes for red letters."""

import xml.etree.ElementTree as ET
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from chainvoice import codec, ubl
from chainvoice.ledger import amounts

from tests.support.world import World

C = {"cbc": ubl.NS["cbc"], "cac": ubl.NS["cac"]}


def state(w, number):
    return codec.to_json(w.invoice(number).to_map())


def text(root, path):
    return root.find(path, C).text


def test_invoice_core_fields_and_totals():
    w = World()
    number = w.issued("alice", buyer_tax_id="91110108551385082Q",
                      lines=[amounts.build_line("Chair", 2, 45_000, 1300), amounts.build_line("Books", 3, 1_999, 900),
                             amounts.build_line("Delivery", 1, 1_999, 1300)])
    inv = state(w, number)
    root = ET.fromstring(ubl.invoice_xml(inv))
    assert root.tag == f"{{{ubl.NS['inv']}}}Invoice"
    assert text(root, "cbc:ID") == number
    assert text(root, "cbc:InvoiceTypeCode") == "380"
    assert text(root, "cbc:DocumentCurrencyCode") == "CNY"
    assert text(root, "cbc:IssueDate") == "2026-03-10"
    assert text(root, "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID") == inv["seller_tax_id"]
    assert text(root, "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID") == "91110108551385082Q"
    excl = Decimal(text(root, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount"))
    incl = Decimal(text(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount"))
    tax = Decimal(text(root, "cac:TaxTotal/cbc:TaxAmount"))
    assert incl == excl + tax
    assert (excl, tax, incl) == (Decimal(inv["amount"]) / 100, Decimal(inv["tax"]) / 100, Decimal(inv["total"]) / 100)
    subs = root.findall("cac:TaxTotal/cac:TaxSubtotal", C)
    assert [text(s, "cac:TaxCategory/cbc:Percent") for s in subs] == ["13.00", "9.00"]
    assert sum(Decimal(text(s, "cbc:TaxAmount")) for s in subs) == tax
    lines = root.findall("cac:InvoiceLine", C)
    assert [text(l, "cac:Item/cbc:Name") for l in lines] == ["Chair", "Books", "Delivery"]
    assert text(lines[1], "cbc:InvoicedQuantity") == "3" and text(lines[1], "cac:Price/cbc:PriceAmount") == "19.99"


def test_red_letter_exports_as_credit_note_referencing_the_original():
    w = World()
    number = w.issued("alice")
    w.ok("shop", "request_red", {"number": number, "amount": 10_000, "reason": "one chair returned"})
    w.ok("alice", "confirm_red", {"number": number})
    root = ET.fromstring(ubl.credit_note_xml(state(w, number)))
    assert root.tag == f"{{{ubl.NS['cn']}}}CreditNote"
    assert text(root, "cbc:CreditNoteTypeCode") == "381"
    assert text(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == number
    incl = Decimal(text(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount"))
    excl = Decimal(text(root, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount"))
    assert incl == Decimal("100.00") and incl == excl + Decimal(text(root, "cac:TaxTotal/cbc:TaxAmount"))


def test_credit_note_needs_a_reversal():
    w = World()
    import pytest

    with pytest.raises(ValueError):
        ubl.credit_note_xml(state(w, w.issued("alice")))


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(1, 20), st.integers(1, 10**7), st.sampled_from([1300, 900, 600, 0])),
                min_size=1, max_size=6), st.data())
def test_reversal_split_is_exact(parts, data):
    lines = [amounts.build_line(f"l{i}", q, p, r) for i, (q, p, r) in enumerate(parts)]
    a, t, total = amounts.totals(lines)
    reversed_total = data.draw(st.integers(1, total))
    groups = ubl.reversal_groups({"lines": lines}, reversed_total)
    assert sum(x + y for x, y in groups.values()) == reversed_total
    assert all(x >= 0 and y >= 0 for x, y in groups.values())


def test_money_formatting_is_exact():
    assert ubl.money(0) == "0.00" and ubl.money(5) == "0.05" and ubl.money(123456789) == "1234567.89"
    assert ubl.money(-250) == "-2.50"
