"""Every code the ledger answers with: state-rule rejections (receipts) and malformed input.

A *rejection* is a well-formed, correctly signed transaction that breaks a state rule: it is
included in a block with a ``rejected`` receipt so attempted fraud stays on the chain as evidence
(SPEC §4). A *malformed* transaction (bad encoding, schema or signature) never enters a block.
"""

# -- rejections (in receipts) ---------------------------------------------------------------
DOUBLE_REIMBURSEMENT = "DOUBLE_REIMBURSEMENT"  # lock/reimburse of a LOCKED/REIMBURSED/DECLARED invoice
DOUBLE_DECLARATION = "DOUBLE_DECLARATION"  # declare of a DECLARED invoice
NOT_HOLDER = "NOT_HOLDER"  # the signer does not hold the invoice
NOT_AUTHORIZED = "NOT_AUTHORIZED"  # the signer's role or relationship does not allow the action
UNKNOWN_INVOICE = "UNKNOWN_INVOICE"
UNKNOWN_MEMBER = "UNKNOWN_MEMBER"
ALREADY_REGISTERED = "ALREADY_REGISTERED"
DUPLICATE_TAX_ID = "DUPLICATE_TAX_ID"  # a second merchant/enterprise under one taxpayer id
DUPLICATE_NUMBER = "DUPLICATE_NUMBER"
DUPLICATE_PAYMENT_REF = "DUPLICATE_PAYMENT_REF"  # idempotent issue: the receipt names the invoice
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
BAD_AMOUNTS = "BAD_AMOUNTS"
BAD_TAX_ID = "BAD_TAX_ID"
BAD_RATE = "BAD_RATE"
BAD_NUMBER = "BAD_NUMBER"  # the number's year digits are not the year of issue
BAD_PERIOD = "BAD_PERIOD"
FLAGGED = "FLAGGED"
MEMBER_INACTIVE = "MEMBER_INACTIVE"
REVERSED = "REVERSED"
INVALID_STATUS = "INVALID_STATUS"  # the invoice's status does not allow this action
RED_PENDING = "RED_PENDING"  # a red-letter request awaits the holder's answer
NO_RED_REQUEST = "NO_RED_REQUEST"
NOT_APPLICABLE = "NOT_APPLICABLE"  # a member field that does not apply to the member's role

REJECTION_CODES = frozenset({
    DOUBLE_REIMBURSEMENT, DOUBLE_DECLARATION, NOT_HOLDER, NOT_AUTHORIZED, UNKNOWN_INVOICE,
    UNKNOWN_MEMBER, ALREADY_REGISTERED, DUPLICATE_TAX_ID, DUPLICATE_NUMBER, DUPLICATE_PAYMENT_REF,
    QUOTA_EXCEEDED, BAD_AMOUNTS, BAD_TAX_ID, BAD_RATE, BAD_NUMBER, BAD_PERIOD, FLAGGED,
    MEMBER_INACTIVE, REVERSED, INVALID_STATUS, RED_PENDING, NO_RED_REQUEST, NOT_APPLICABLE,
})

# -- malformed input (never enters a block; HTTP 400 at the edge) ---------------------------
BAD_ENCODING = "BAD_ENCODING"
BAD_ENVELOPE = "BAD_ENVELOPE"
BAD_SCHEMA = "BAD_SCHEMA"
BAD_SIGNATURE = "BAD_SIGNATURE"
WRONG_CHAIN = "WRONG_CHAIN"
TOO_LARGE = "TOO_LARGE"

MALFORMED_CODES = frozenset({BAD_ENCODING, BAD_ENVELOPE, BAD_SCHEMA, BAD_SIGNATURE, WRONG_CHAIN, TOO_LARGE})


class MalformedTransaction(ValueError):
    """A transaction that can never enter a block: its encoding, schema or signature is wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
