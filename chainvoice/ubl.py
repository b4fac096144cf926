"""UBL 2.1 export of an invoice with the EN 16931 core fields, and red-letter reversals as
credit notes (type 381) referencing the original.

Amounts on the chain are integer fen; UBL carries decimal yuan with two places, formatted from
the integers (never through floats), so ``TaxInclusiveAmount = TaxExclusiveAmount + TaxAmount``
holds exactly.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from .ledger import calendar

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CUSTOMIZATION = "urn:cen.eu:en16931:2017"
CURRENCY = "CNY"
INVOICE_TYPE = "380"  # commercial invoice (UNTDID 1001)
CREDIT_NOTE_TYPE = "381"  # credit note
UNIT_CODE = "C62"  # "one" (UN/ECE Rec 20): quantities on the chain are counts

ET.register_namespace("cac", NS["cac"])
ET.register_namespace("cbc", NS["cbc"])


def money(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def percent(rate_bp: int) -> str:
    return f"{rate_bp // 100}.{rate_bp % 100:02d}"


def _cbc(parent: ET.Element, name: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{NS['cbc']}}}{name}", attrs)
    el.text = text
    return el


def _cac(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{NS['cac']}}}{name}")


def _party(parent: ET.Element, role: str, name: str, tax_id: str) -> None:
    party = _cac(_cac(parent, role), "Party")
    _cbc(_cac(party, "PartyName"), "Name", name)
    if tax_id:
        scheme = _cac(party, "PartyTaxScheme")
        _cbc(scheme, "CompanyID", tax_id)
        _cbc(_cac(scheme, "TaxScheme"), "ID", "VAT")
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", name)
    if tax_id:
        _cbc(legal, "CompanyID", tax_id)


def _category(rate_bp: int) -> str:
    return "S" if rate_bp > 0 else "Z"  # standard rated / zero rated (UNCL 5305)


def _tax_category(parent: ET.Element, name: str, rate_bp: int) -> None:
    cat = _cac(parent, name)
    _cbc(cat, "ID", _category(rate_bp))
    _cbc(cat, "Percent", percent(rate_bp))
    _cbc(_cac(cat, "TaxScheme"), "ID", "VAT")


def _groups(lines: list[dict[str, Any]]) -> dict[int, tuple[int, int]]:
    """rate_bp -> (taxable amount, tax) summed over lines (the VAT breakdown, BG-23)."""
    out: dict[int, tuple[int, int]] = {}
    for line in lines:
        a, t = out.get(line["rate_bp"], (0, 0))
        out[line["rate_bp"]] = (a + line["amount"], t + line["tax"])
    return out


def _totals(doc: ET.Element, groups: dict[int, tuple[int, int]]) -> tuple[int, int]:
    net = sum(a for a, _ in groups.values())
    tax = sum(t for _, t in groups.values())
    tax_total = _cac(doc, "TaxTotal")
    _cbc(tax_total, "TaxAmount", money(tax), currencyID=CURRENCY)
    for rate, (a, t) in sorted(groups.items(), reverse=True):
        sub = _cac(tax_total, "TaxSubtotal")
        _cbc(sub, "TaxableAmount", money(a), currencyID=CURRENCY)
        _cbc(sub, "TaxAmount", money(t), currencyID=CURRENCY)
        _tax_category(sub, "TaxCategory", rate)
    mt = _cac(doc, "LegalMonetaryTotal")
    _cbc(mt, "LineExtensionAmount", money(net), currencyID=CURRENCY)
    _cbc(mt, "TaxExclusiveAmount", money(net), currencyID=CURRENCY)
    _cbc(mt, "TaxInclusiveAmount", money(net + tax), currencyID=CURRENCY)
    _cbc(mt, "PayableAmount", money(net + tax), currencyID=CURRENCY)
    return net, tax


def _header(doc: ET.Element, ident: str, issue_ms: int, type_tag: str, type_code: str, note: str) -> None:
    _cbc(doc, "CustomizationID", CUSTOMIZATION)
    _cbc(doc, "ID", ident)
    _cbc(doc, "IssueDate", calendar.date_of(issue_ms))
    _cbc(doc, type_tag, type_code)
    if note:
        _cbc(doc, "Note", note)
    _cbc(doc, "DocumentCurrencyCode", CURRENCY)


def _parties(doc: ET.Element, inv: dict[str, Any]) -> None:
    _party(doc, "AccountingSupplierParty", inv["seller_name"], inv["seller_tax_id"])
    _party(doc, "AccountingCustomerParty", inv["buyer_name"], inv.get("buyer_tax_id", ""))


def invoice_xml(inv: dict[str, Any]) -> str:
    """The invoice as a UBL 2.1 Invoice (type 380). ``inv`` is the state record (JSON view)."""
    doc = ET.Element(f"{{{NS['inv']}}}Invoice")
    _header(doc, inv["number"], inv["issued_at_ms"], "InvoiceTypeCode", INVOICE_TYPE, inv.get("remark", ""))
    _parties(doc, inv)
    _totals(doc, _groups(inv["lines"]))
    for i, line in enumerate(inv["lines"], start=1):
        il = _cac(doc, "InvoiceLine")
        _cbc(il, "ID", str(i))
        _cbc(il, "InvoicedQuantity", str(line["quantity"]), unitCode=UNIT_CODE)
        _cbc(il, "LineExtensionAmount", money(line["amount"]), currencyID=CURRENCY)
        item = _cac(il, "Item")
        _cbc(item, "Name", line["name"])
        _tax_category(item, "ClassifiedTaxCategory", line["rate_bp"])
        _cbc(_cac(il, "Price"), "PriceAmount", money(line["unit_price"]), currencyID=CURRENCY)
    return _serialize(doc)


def reversal_groups(inv: dict[str, Any], reversed_total: int) -> dict[int, tuple[int, int]]:
    """Split a reversed tax-inclusive amount over the invoice's VAT groups, exactly.

    Each group gets a share of ``reversed_total`` in proportion to its gross; each share splits
    into net and tax in the group's own proportion. Rounding remainders go to the largest group,
    so the parts always sum to ``reversed_total``.
    """
    groups = _groups(inv["lines"])
    gross_total = sum(a + t for a, t in groups.values())
    if reversed_total >= gross_total:
        return groups
    rates = sorted(groups, key=lambda r: -(groups[r][0] + groups[r][1]))
    out: dict[int, tuple[int, int]] = {}
    left = reversed_total
    for i, rate in enumerate(rates):
        a, t = groups[rate]
        share = left if i == len(rates) - 1 else reversed_total * (a + t) // gross_total
        left -= share
        tax = share * t // (a + t) if a + t else 0
        out[rate] = (share - tax, tax)
    return out


def credit_note_xml(inv: dict[str, Any], issued_ms: int | None = None) -> str:
    """The red-letter reversal(s) of ``inv`` as one UBL 2.1 CreditNote (type 381) for the
    reversed amount, referencing the original invoice (BG-3)."""
    reversed_total = inv.get("reversed_amount", 0)
    if reversed_total <= 0:
        raise ValueError(f"invoice {inv['number']} has no red-letter reversal")
    doc = ET.Element(f"{{{NS['cn']}}}CreditNote")
    status = "full" if inv["remaining"] == 0 else "partial"
    _header(doc, f"{inv['number']}-R", issued_ms or inv["issued_at_ms"], "CreditNoteTypeCode", CREDIT_NOTE_TYPE,
            f"red-letter reversal ({status}) of invoice {inv['number']}")
    ref = _cac(_cac(doc, "BillingReference"), "InvoiceDocumentReference")
    _cbc(ref, "ID", inv["number"])
    _cbc(ref, "IssueDate", calendar.date_of(inv["issued_at_ms"]))
    _parties(doc, inv)
    groups = reversal_groups(inv, reversed_total)
    _totals(doc, groups)
    for i, (rate, (a, _)) in enumerate(sorted(groups.items(), reverse=True), start=1):
        cl = _cac(doc, "CreditNoteLine")
        _cbc(cl, "ID", str(i))
        _cbc(cl, "CreditedQuantity", "1", unitCode=UNIT_CODE)
        _cbc(cl, "LineExtensionAmount", money(a), currencyID=CURRENCY)
        item = _cac(cl, "Item")
        _cbc(item, "Name", f"Reversal of invoice {inv['number']} at {percent(rate)}% VAT")
        _tax_category(item, "ClassifiedTaxCategory", rate)
        _cbc(_cac(cl, "Price"), "PriceAmount", money(a), currencyID=CURRENCY)
    return _serialize(doc)


def _serialize(doc: ET.Element) -> str:
    ET.indent(doc)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(doc, encoding="unicode") + "\n"
