"""Every state rule of SPEC §4 by example: the happy life cycle and one test per rejection code."""

import pytest

from chainvoice import codec
from chainvoice.ledger import amounts, calendar, codes
from chainvoice.ledger.records import DECLARED, ISSUED, LOCKED, REIMBURSED, REVERSED, invoice_key
from chainvoice.ledger.state import DecodedValues, LedgerState

from tests.support.world import T0, World, make_tax_id


@pytest.fixture
def w() -> World:
    return World()


def test_t0_is_march_2026_in_beijing():
    assert calendar.date_of(T0) == "2026-03-10"


def test_life_cycle_issue_transfer_reimburse_declare(w):
    body = w.issue_body(holder="alice", payment_ref="pay-001")
    issued_at = w.now
    r = w.ok("shop", "issue", body)
    assert r.reference == {"number": body["number"]}
    inv = w.invoice(body["number"])
    assert (inv.status, inv.holder, inv.remaining, inv.issued_at_ms) == (ISSUED, w.pub("alice"), body["total"], issued_at)
    assert inv.last_tx == r.tx_id
    w.ok("alice", "transfer", {"number": body["number"], "to": w.pub("acme")})
    w.ok("plat1", "lock", {"number": body["number"], "claim_id": "EXP-7"})
    assert w.invoice(body["number"]).status == LOCKED
    w.ok("plat1", "reimburse", {"number": body["number"], "claim_id": "EXP-7"})
    assert w.invoice(body["number"]).status == REIMBURSED
    w.ok("acme", "declare", {"number": body["number"], "period": "2026-03"})
    inv = w.invoice(body["number"])
    assert (inv.status, inv.declared_period, inv.amount, inv.total) == (DECLARED, "2026-03", body["amount"], body["total"])


def test_a_record_read_back_through_the_decoded_memo_is_a_copy(w):
    """Blocks share decoded values through a memo; a rule changing the record it read must not
    change what the next block reads (the memo's map) or the value committed."""
    body = w.issue_body(holder="alice")
    w.ok("shop", "issue", body)
    raw = w.state.get(invoice_key(body["number"]))
    memo = DecodedValues()
    first = LedgerState(w.state, memo)
    inv = first.invoice(body["number"])
    inv.holder = w.pub("bob")
    inv.claim = {"claim_id": "X", "platform": w.pub("plat1")}
    first.put_invoice(inv)
    written = first.writes()[invoice_key(body["number"])]
    assert memo.get(written) == codec.decode(written)  # what it wrote, decoded
    assert memo.get(raw) is None  # it read the committed value by decoding it
    w.state.values[invoice_key(body["number"])] = written
    second = LedgerState(w.state, memo).invoice(body["number"])  # from the memo
    second.holder = w.pub("acme")
    assert codec.decode(written)["holder"] == w.pub("bob")
    again = LedgerState(w.state, memo).invoice(body["number"])
    assert again.holder == w.pub("bob") and again.claim["claim_id"] == "X"


def test_reimburse_in_one_step_and_platform_declares(w):
    n = w.held_by_acme()
    w.ok("plat2", "reimburse", {"number": n, "claim_id": "C1"})
    w.ok("plat2", "declare", {"number": n, "period": "2026-03"})
    assert w.invoice(n).status == DECLARED


def test_unlock_returns_to_issued(w):
    n = w.held_by_acme()
    w.ok("plat1", "lock", {"number": n, "claim_id": "C1"})
    w.rejected(codes.NOT_AUTHORIZED, "plat2", "unlock", {"number": n})
    w.ok("plat1", "unlock", {"number": n})
    assert w.invoice(n).status == ISSUED and w.invoice(n).claim is None
    w.ok("plat2", "reimburse", {"number": n, "claim_id": "C2"})


# -- DOUBLE_REIMBURSEMENT -------------------------------------------------------------------

def test_double_reimbursement_through_a_second_platform(w):
    n = w.held_by_acme()
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "C1"})
    w.rejected(codes.DOUBLE_REIMBURSEMENT, "plat2", "reimburse", {"number": n, "claim_id": "C9"})
    w.rejected(codes.DOUBLE_REIMBURSEMENT, "plat1", "reimburse", {"number": n, "claim_id": "C1"})
    w.rejected(codes.DOUBLE_REIMBURSEMENT, "plat2", "lock", {"number": n, "claim_id": "C9"})
    # a platform that does not even serve the holder is still recorded as a double claim
    w.rejected(codes.DOUBLE_REIMBURSEMENT, "plat3", "reimburse", {"number": n, "claim_id": "G1"})


def test_double_reimbursement_of_locked_and_declared(w):
    n = w.held_by_acme()
    w.ok("plat1", "lock", {"number": n, "claim_id": "C1"})
    w.rejected(codes.DOUBLE_REIMBURSEMENT, "plat2", "lock", {"number": n, "claim_id": "C2"})
    w.rejected(codes.DOUBLE_REIMBURSEMENT, "plat2", "reimburse", {"number": n, "claim_id": "C2"})
    w.rejected(codes.DOUBLE_REIMBURSEMENT, "plat1", "reimburse", {"number": n, "claim_id": "other-claim"})
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "C1"})
    w.ok("acme", "declare", {"number": n, "period": "2026-03"})
    w.rejected(codes.DOUBLE_REIMBURSEMENT, "plat2", "reimburse", {"number": n, "claim_id": "C3"})


def test_two_platforms_racing_in_one_block_only_one_wins(w):
    n = w.held_by_acme()
    a = w.tx("plat1", "reimburse", {"number": n, "claim_id": "A"})
    b = w.tx("plat2", "reimburse", {"number": n, "claim_id": "B"})
    ra, rb = w.submit(a, b)
    assert ra.ok and not rb.ok and rb.code == codes.DOUBLE_REIMBURSEMENT


# -- DOUBLE_DECLARATION, BAD_PERIOD ---------------------------------------------------------

def test_double_declaration(w):
    n = w.held_by_acme()
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "C1"})
    w.ok("acme", "declare", {"number": n, "period": "2026-03"})
    w.rejected(codes.DOUBLE_DECLARATION, "acme", "declare", {"number": n, "period": "2026-03"})
    w.rejected(codes.DOUBLE_DECLARATION, "plat1", "declare", {"number": n, "period": "2026-04"})


def test_declare_before_reimbursement_is_invalid(w):
    n = w.held_by_acme()
    w.rejected(codes.INVALID_STATUS, "acme", "declare", {"number": n, "period": "2026-03"})
    w.ok("plat1", "lock", {"number": n, "claim_id": "C1"})
    w.rejected(codes.INVALID_STATUS, "acme", "declare", {"number": n, "period": "2026-03"})


@pytest.mark.parametrize("period", ["2026-13", "2026-3", "26-03", "2026-02", "2026-04", "2026-00"])
def test_bad_period(w, period):
    n = w.held_by_acme()
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "C1"})
    w.rejected(codes.BAD_PERIOD, "acme", "declare", {"number": n, "period": period})


def test_declare_by_unrelated_party(w):
    n = w.held_by_acme()
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "C1"})
    w.rejected(codes.NOT_AUTHORIZED, "globex", "declare", {"number": n, "period": "2026-03"})
    w.rejected(codes.NOT_AUTHORIZED, "plat3", "declare", {"number": n, "period": "2026-03"})


# -- NOT_HOLDER, NOT_AUTHORIZED, UNKNOWN_INVOICE --------------------------------------------

def test_not_holder(w):
    n = w.issued("alice")
    w.rejected(codes.NOT_HOLDER, "bob", "transfer", {"number": n, "to": w.pub("bob")})
    w.rejected(codes.NOT_HOLDER, "shop", "transfer", {"number": n, "to": w.pub("shop")})
    w.ok("alice", "transfer", {"number": n, "to": w.pub("bob")})
    w.rejected(codes.NOT_HOLDER, "alice", "transfer", {"number": n, "to": w.pub("alice")})
    assert w.invoice(n).holder == w.pub("bob")


def test_not_authorized_roles(w):
    n = w.held_by_acme()
    w.rejected(codes.NOT_AUTHORIZED, "plat3", "lock", {"number": n, "claim_id": "x"})  # serves globex only
    w.rejected(codes.NOT_AUTHORIZED, "acme", "reimburse", {"number": n, "claim_id": "x"})  # not a platform
    w.rejected(codes.NOT_AUTHORIZED, "alice", "issue", w.issue_body())  # not a merchant
    w.rejected(codes.NOT_AUTHORIZED, "shop", "register_member",
               {"key": w.pub("eve"), "role": "merchant", "name": "Eve", "tax_id": make_tax_id(99),
                "taxpayer_type": "general", "monthly_quota": 1})
    w.rejected(codes.NOT_AUTHORIZED, "plat1", "flag", {"number": n, "reason": "x"})


def test_platform_cannot_claim_a_persons_invoice(w):
    n = w.issued("alice")
    w.rejected(codes.NOT_AUTHORIZED, "plat1", "reimburse", {"number": n, "claim_id": "x"})


def test_merchant_issuing_under_another_sellers_tax_id(w):
    body = w.issue_body(seller="shop")
    body["seller_tax_id"] = w.tax_ids["taxi"]
    w.rejected(codes.NOT_AUTHORIZED, "shop", "issue", body)


def test_unknown_invoice(w):
    for kind, body in [("transfer", {"to": w.pub("bob")}), ("lock", {"claim_id": "c"}), ("unlock", {}),
                       ("reimburse", {"claim_id": "c"}), ("declare", {"period": "2026-03"}),
                       ("request_red", {"amount": 1, "reason": "r"}), ("confirm_red", {}), ("reject_red", {}),
                       ("flag", {"reason": "r"}), ("clear", {})]:
        signer = {"flag": "tax", "clear": "tax", "lock": "plat1", "unlock": "plat1", "reimburse": "plat1",
                  "request_red": "shop"}.get(kind, "alice")
        w.rejected(codes.UNKNOWN_INVOICE, signer, kind, {"number": "26440999999999999999", **body})


# -- issue rules ----------------------------------------------------------------------------

def test_duplicate_number(w):
    body = w.issue_body()
    w.ok("shop", "issue", body)
    again = w.issue_body(number=body["number"], holder="bob")
    w.rejected(codes.DUPLICATE_NUMBER, "shop", "issue", again)


def test_duplicate_payment_ref_names_the_existing_invoice(w):
    first = w.issue_body(payment_ref="wx-pay-42")
    w.ok("shop", "issue", first)
    retry = w.issue_body(payment_ref="wx-pay-42")  # a retried callback with a fresh number
    r = w.rejected(codes.DUPLICATE_PAYMENT_REF, "shop", "issue", retry)
    assert r.reference == {"number": first["number"]}
    assert w.invoice(retry["number"]) is None
    # the same payment id at another seller is a different payment
    w.ok("taxi", "issue", w.issue_body(seller="taxi", payment_ref="wx-pay-42"))


def test_quota_exceeded_per_month_and_resets_next_month(w):
    big = [amounts.build_line("Meter", 1, 480_000, 0)]
    w.ok("taxi", "issue", w.issue_body(seller="taxi", lines=big))
    w.rejected(codes.QUOTA_EXCEEDED, "taxi", "issue", w.issue_body(seller="taxi", lines=[amounts.build_line("Ride", 1, 20_001, 0)]))
    w.ok("taxi", "issue", w.issue_body(seller="taxi", lines=[amounts.build_line("Ride", 1, 20_000, 0)]))
    april = T0 + 25 * 86_400_000  # 2026-04-04
    w.ok("taxi", "issue", w.issue_body(seller="taxi", lines=big), at=april)


def test_quota_month_boundary_is_beijing_time(w):
    # 2026-03-31T16:30Z is already 2026-04-01 00:30 in Beijing.
    w.ok("tax", "update_member", {"key": w.pub("taxi"), "monthly_quota": 100})
    w.ok("taxi", "issue", w.issue_body(seller="taxi", lines=[amounts.build_line("Ride", 1, 100, 0)]),
         at=1774974600000 - 3_600_000)  # 2026-03-31 23:30 Beijing
    w.ok("taxi", "issue", w.issue_body(seller="taxi", lines=[amounts.build_line("Ride", 1, 100, 0)]),
         at=1774974600000)


@pytest.mark.parametrize("mutate", [
    lambda b: b["lines"][0].update(amount=b["lines"][0]["amount"] + 1),
    lambda b: b["lines"][0].update(tax=b["lines"][0]["tax"] + 1),
    lambda b: b.update(amount=b["amount"] + 1),
    lambda b: b.update(tax=b["tax"] - 1),
    lambda b: b.update(total=b["total"] + 1),
    lambda b: b["lines"][0].update(quantity=0, amount=0, tax=0),
    lambda b: b["lines"][0].update(quantity=-2, amount=-b["lines"][0]["amount"], tax=-b["lines"][0]["tax"]),
])
def test_bad_amounts(w, mutate):
    body = w.issue_body()
    mutate(body)
    w.rejected(codes.BAD_AMOUNTS, "shop", "issue", body)


def test_tax_rounds_half_up():
    assert amounts.line_tax(50, 1300) == 7  # 6.5 -> 7
    assert amounts.line_tax(49, 1300) == 6  # 6.37 -> 6
    assert amounts.line_tax(150, 300) == 5  # 4.5 -> 5
    assert amounts.line_tax(1, 600) == 0  # 0.06 -> 0


def test_bad_tax_id(w):
    body = w.issue_body()
    body["seller_tax_id"] = "91350100M000100Y4Z"
    w.rejected(codes.BAD_TAX_ID, "shop", "issue", body)
    body = w.issue_body(buyer_tax_id="91110108551385082R")
    w.rejected(codes.BAD_TAX_ID, "shop", "issue", body)
    w.ok("shop", "issue", w.issue_body(buyer_tax_id="91110108551385082Q"))
    w.rejected(codes.BAD_TAX_ID, "tax", "register_member",
               {"key": w.pub("eve"), "role": "enterprise", "name": "Eve", "tax_id": "91110108551385082R"})


def test_bad_rate_by_taxpayer_type(w):
    w.rejected(codes.BAD_RATE, "taxi", "issue", w.issue_body(seller="taxi", lines=[amounts.build_line("Ride", 1, 100, 1300)]))
    w.rejected(codes.BAD_RATE, "shop", "issue", w.issue_body(lines=[amounts.build_line("Chair", 1, 100, 300)]))
    w.rejected(codes.BAD_RATE, "shop", "issue", w.issue_body(lines=[amounts.build_line("Chair", 1, 100, 1700)]))
    for rate in (1300, 900, 600, 0):
        w.ok("shop", "issue", w.issue_body(lines=[amounts.build_line("Chair", 1, 100, rate)]))


def test_bad_number_year(w):
    w.rejected(codes.BAD_NUMBER, "shop", "issue", w.issue_body(number=w.number(year=25)))


# -- members --------------------------------------------------------------------------------

def test_member_inactive_frozen_merchant_and_reactivation(w):
    w.ok("tax", "update_member", {"key": w.pub("shop"), "status": "frozen"})
    w.rejected(codes.MEMBER_INACTIVE, "shop", "issue", w.issue_body())
    w.ok("tax", "update_member", {"key": w.pub("shop"), "status": "active"})
    w.ok("shop", "issue", w.issue_body())


def test_member_inactive_frozen_enterprise_and_platform(w):
    n = w.held_by_acme()
    w.ok("tax", "update_member", {"key": w.pub("acme"), "status": "frozen"})
    w.rejected(codes.MEMBER_INACTIVE, "plat1", "reimburse", {"number": n, "claim_id": "c"})
    w.rejected(codes.MEMBER_INACTIVE, "acme", "transfer", {"number": n, "to": w.pub("alice")})
    w.ok("tax", "update_member", {"key": w.pub("acme"), "status": "active"})
    w.ok("tax", "update_member", {"key": w.pub("plat1"), "status": "frozen"})
    w.rejected(codes.MEMBER_INACTIVE, "plat1", "reimburse", {"number": n, "claim_id": "c"})


def test_deregistered_is_final(w):
    w.ok("tax", "update_member", {"key": w.pub("taxi"), "status": "deregistered"})
    w.rejected(codes.MEMBER_INACTIVE, "taxi", "issue", w.issue_body(seller="taxi"))
    w.rejected(codes.MEMBER_INACTIVE, "tax", "update_member", {"key": w.pub("taxi"), "status": "active"})


def test_member_registration_rules(w):
    w.rejected(codes.ALREADY_REGISTERED, "tax", "register_member",
               {"key": w.pub("acme"), "role": "enterprise", "name": "Again", "tax_id": make_tax_id(50)})
    w.rejected(codes.DUPLICATE_TAX_ID, "tax", "register_member",
               {"key": w.pub("eve"), "role": "enterprise", "name": "Eve", "tax_id": w.tax_ids["acme"]})
    w.rejected(codes.UNKNOWN_MEMBER, "tax", "register_member",
               {"key": w.pub("plat9"), "role": "platform", "name": "P9", "serves": [w.pub("alice")]})
    w.rejected(codes.UNKNOWN_MEMBER, "tax", "update_member", {"key": w.pub("nobody"), "status": "frozen"})
    w.rejected(codes.NOT_APPLICABLE, "tax", "update_member", {"key": w.pub("acme"), "monthly_quota": 5})
    w.rejected(codes.NOT_AUTHORIZED, "tax", "update_member", {"key": w.pub("tax"), "status": "frozen"})
    # a merchant may also be an enterprise under the same taxpayer id
    w.ok("tax", "register_member", {"key": w.pub("shop-hq"), "role": "enterprise", "name": "Shop HQ",
                                    "tax_id": w.tax_ids["shop"]})


def test_platform_serves_update(w):
    n = w.issued("bob")
    w.ok("bob", "transfer", {"number": n, "to": w.pub("globex")})
    w.rejected(codes.NOT_AUTHORIZED, "plat1", "reimburse", {"number": n, "claim_id": "c"})
    w.ok("tax", "update_member", {"key": w.pub("plat1"), "serves": [w.pub("acme"), w.pub("globex")]})
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "c"})


# -- red letter ------------------------------------------------------------------------------

def test_red_partial_then_full_reversal(w):
    n = w.issued("alice")
    total = w.invoice(n).total
    w.ok("shop", "request_red", {"number": n, "amount": 1000, "reason": "returned one item"})
    w.rejected(codes.RED_PENDING, "shop", "request_red", {"number": n, "amount": 1, "reason": "x"})
    w.rejected(codes.RED_PENDING, "alice", "transfer", {"number": n, "to": w.pub("acme")})
    w.rejected(codes.NOT_HOLDER, "bob", "confirm_red", {"number": n})
    w.ok("alice", "confirm_red", {"number": n})
    inv = w.invoice(n)
    assert (inv.remaining, inv.status, inv.total) == (total - 1000, ISSUED, total)
    w.rejected(codes.BAD_AMOUNTS, "shop", "request_red", {"number": n, "amount": total, "reason": "too much"})
    w.ok("shop", "request_red", {"number": n, "amount": total - 1000, "reason": "cancelled"})
    w.ok("alice", "confirm_red", {"number": n})
    assert w.invoice(n).status == REVERSED and w.invoice(n).remaining == 0
    w.rejected(codes.REVERSED, "alice", "transfer", {"number": n, "to": w.pub("acme")})
    w.rejected(codes.REVERSED, "shop", "request_red", {"number": n, "amount": 1, "reason": "x"})


def test_red_rejected_by_holder_and_no_request(w):
    n = w.issued("alice")
    w.rejected(codes.NO_RED_REQUEST, "alice", "confirm_red", {"number": n})
    w.ok("shop", "request_red", {"number": n, "amount": 500, "reason": "price error"})
    w.ok("alice", "reject_red", {"number": n, "reason": "the price was right"})
    assert w.invoice(n).red_request is None and w.invoice(n).remaining == w.invoice(n).total


def test_red_applies_at_once_when_the_seller_holds_it(w):
    n = w.issued("shop")
    w.ok("shop", "request_red", {"number": n, "amount": w.invoice(n).total, "reason": "issued by mistake"})
    assert w.invoice(n).status == REVERSED


def test_red_after_lock_is_refused_and_only_the_seller_requests(w):
    n = w.held_by_acme()
    w.rejected(codes.NOT_AUTHORIZED, "taxi", "request_red", {"number": n, "amount": 1, "reason": "x"})
    w.ok("plat1", "lock", {"number": n, "claim_id": "c"})
    w.rejected(codes.INVALID_STATUS, "shop", "request_red", {"number": n, "amount": 1, "reason": "x"})


def test_red_pending_blocks_reimbursement(w):
    n = w.held_by_acme()
    w.ok("shop", "request_red", {"number": n, "amount": 100, "reason": "x"})
    w.rejected(codes.RED_PENDING, "plat1", "reimburse", {"number": n, "claim_id": "c"})
    w.ok("acme", "confirm_red", {"number": n})
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "c"})


def test_red_in_month_of_issue_returns_quota(w):
    w.ok("tax", "update_member", {"key": w.pub("taxi"), "monthly_quota": 1000})
    n = w.issued("taxi", seller="taxi", lines=[amounts.build_line("Ride", 1, 1000, 0)])
    w.rejected(codes.QUOTA_EXCEEDED, "taxi", "issue", w.issue_body(seller="taxi", lines=[amounts.build_line("Ride", 1, 1, 0)]))
    w.ok("taxi", "request_red", {"number": n, "amount": 1000, "reason": "fare cancelled"})
    w.ok("taxi", "issue", w.issue_body(seller="taxi", lines=[amounts.build_line("Ride", 1, 1000, 0)]))


# -- tax control -----------------------------------------------------------------------------

def test_flagged_invoices_cannot_move(w):
    n = w.held_by_acme()
    w.ok("tax", "flag", {"number": n, "reason": "suspected fake purchase"})
    w.rejected(codes.FLAGGED, "plat1", "lock", {"number": n, "claim_id": "c"})
    w.rejected(codes.FLAGGED, "plat1", "reimburse", {"number": n, "claim_id": "c"})
    w.rejected(codes.FLAGGED, "acme", "transfer", {"number": n, "to": w.pub("alice")})
    w.rejected(codes.FLAGGED, "shop", "request_red", {"number": n, "amount": 1, "reason": "x"})
    w.rejected(codes.INVALID_STATUS, "tax", "flag", {"number": n, "reason": "again"})
    w.ok("tax", "clear", {"number": n, "reason": "verified with the seller"})
    w.rejected(codes.INVALID_STATUS, "tax", "clear", {"number": n})
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "c"})


def test_flag_after_reimbursement_blocks_declaration(w):
    n = w.held_by_acme()
    w.ok("plat1", "reimburse", {"number": n, "claim_id": "c"})
    w.ok("tax", "flag", {"number": n, "reason": "audit"})
    w.rejected(codes.FLAGGED, "acme", "declare", {"number": n, "period": "2026-03"})


def test_every_rejection_code_is_exercised_by_these_tests():
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    missing = [c for c in codes.REJECTION_CODES if f"codes.{c}" not in source]
    assert not missing, f"no example test for {missing}"


# -- replay ----------------------------------------------------------------------------------

def test_replay_is_never_applied_twice(w):
    n = w.issued("alice")
    t = w.tx("alice", "transfer", {"number": n, "to": w.pub("bob")})
    (r,) = w.submit(t)
    assert r.ok
    w.ok("bob", "transfer", {"number": n, "to": w.pub("alice")})
    before = w.snapshot()
    assert w.submit(t) == []  # left out of the block: no receipt, no effect
    assert w.snapshot() == before and w.invoice(n).holder == w.pub("alice")
    # and twice in one block: only the first counts
    t2 = w.tx("alice", "transfer", {"number": n, "to": w.pub("carol")})
    assert len(w.submit(t2, t2)) == 1


def test_records_fast_encoding_is_canonical(w):
    """encode_sorted skips re-sorting; every record shape must still be the canonical bytes."""
    from chainvoice import codec

    n = w.held_by_acme()
    shapes = [w.invoice(n)]
    w.ok("plat1", "lock", {"number": n, "claim_id": "C1"})
    shapes.append(w.invoice(n))
    m = w.issued("alice")
    w.ok("shop", "request_red", {"number": m, "amount": 10, "reason": "r"})
    w.ok("tax", "flag", {"number": m, "reason": "audit"})
    shapes += [w.invoice(m), w.member("plat1"), w.member("shop"), w.member("tax")]
    for rec in shapes:
        assert rec.encode() == codec.encode(rec.to_map())
        assert set(rec.to_map()) == set(type(rec).__slots__)
    # receipts: accepted, rejected with a message, with one- and two-key references
    receipts = w.receipts + [w.do("plat2", "reimburse", {"number": n, "claim_id": "C2"}),
                             w.do("shop", "issue", dict(w.issue_body(holder="alice"), number=m))]
    assert {len(r.reference or {}) for r in receipts} >= {0, 1, 2} and {r.ok for r in receipts} == {True, False}
    for r in receipts:
        assert r.leaf() == codec.encode({"tx_id": r.tx_id, "status": r.status, "code": r.code})
        assert codec.encode_sorted(r.to_map()) == codec.encode(r.to_map())
