from django.utils.translation import gettext_lazy as _

from nethospital.core.errors import ErrorCode

# --- who ---------------------------------------------------------------------------------------
PHARMACY_NOT_FOUND = ErrorCode("pharmacy_not_found", _("There is no such pharmacy."), 404)
NOT_PHARMACY_STAFF = ErrorCode(
    "not_pharmacy_staff", _("Only the pharmacists and staff of this pharmacy may do this."), 403
)
NOT_PHARMACIST = ErrorCode(
    "not_dispensing_pharmacist", _("Only a pharmacist of this pharmacy dispenses medicine (R6, R10)."), 403
)
NOT_COURIER = ErrorCode("not_courier", _("Only a courier of this pharmacy may do this."), 403)
NOT_YOUR_DELIVERY = ErrorCode("not_your_delivery", _("This delivery was handed to another courier."), 403)
NOT_STATION_OPERATOR = ErrorCode(
    "not_station_operator", _("Only an operator of the service station named in the order may do this."), 403
)
ORDER_NOT_FOUND = ErrorCode("order_not_found", _("There is no such order."), 404)
NOT_BUYER = ErrorCode(
    "not_buyer",
    _("Medicine is sold in the patient's real name: only the patient or their registered guardian may buy it (R18)."),
    403,
)

# --- ordering ----------------------------------------------------------------------------------
PRESCRIPTION_NOT_APPROVED = ErrorCode(
    "prescription_not_approved",
    _("A pharmacist must approve the prescription before its medicine can be ordered (R9)."),
    409,
)
PRESCRIPTION_USED = ErrorCode("prescription_used", _("This prescription has already been used (R15)."), 409)
PRESCRIPTION_EXPIRED = ErrorCode("prescription_expired", _("This prescription has expired."), 409)
ORDER_EXISTS = ErrorCode("prescription_already_ordered", _("This prescription already has an order (%(number)s)."), 409)
NOTICE_REQUIRED = ErrorCode(
    "notice_required",
    _("Confirm that prescription drugs are bought and used on a prescription under a pharmacist's guidance (R16)."),
)
NO_ITEMS = ErrorCode("order_empty", _("Choose at least one item."))
QUANTITY_INVALID = ErrorCode("quantity_invalid", _("Enter a quantity from 1 to %(limit)s."))
NOT_SOLD_HERE = ErrorCode("not_sold_here", _("%(product)s is not sold by this pharmacy."), 409)
NOT_ENOUGH_STOCK = ErrorCode(
    "not_enough_stock", _("%(product)s: this pharmacy has only %(available)s box(es) available."), 409
)
NEEDS_PRESCRIPTION = ErrorCode(
    "needs_prescription", _("%(product)s is a prescription drug: it is sold only on an approved prescription."), 409
)
DELIVERY_DETAILS_REQUIRED = ErrorCode(
    "delivery_details_required", _("Give the recipient's name, mobile phone number and delivery address.")
)
PHONE_INVALID = ErrorCode("phone_invalid", _("Enter an 11-digit mobile phone number."))
STATION_REQUIRED = ErrorCode("station_required", _("Choose the service station where you will pick it up."))
CASH_ONLY_AT_STATION = ErrorCode(
    "cash_only_at_station", _("Cash is paid at a service station: choose pickup at a station, or pay online.")
)

# --- paying and cancelling ---------------------------------------------------------------------
NOT_AWAITING_PAYMENT = ErrorCode("order_not_awaiting_payment", _("This order is not waiting for payment."), 409)
PAYMENT_DECLINED = ErrorCode("payment_declined", _("The payment was declined: %(reason)s"), 402)
NOT_CANCELLABLE = ErrorCode(
    "order_not_cancellable", _("This order can no longer be cancelled: its medicine has left the shelf."), 409
)
CANCEL_REASON_REQUIRED = ErrorCode("cancel_reason_required", _("Give the reason for cancelling the order."))
PRICE_INVALID = ErrorCode("price_invalid", _("Enter a price from 0.01 to 100000 yuan."))

# --- stock -------------------------------------------------------------------------------------
NOTHING_SCANNED = ErrorCode("nothing_scanned", _("Scan at least one case, pallet or box."))
TOO_MANY_CODES = ErrorCode("too_many_codes", _("Scan at most %(limit)s codes at once."))
UNREADABLE_CODES = ErrorCode(
    "unreadable_codes", _("These codes cannot be read (nothing was recorded; scan them again): %(codes)s")
)

# --- dispensing --------------------------------------------------------------------------------
NOT_AWAITING_DISPENSING = ErrorCode(
    "order_not_awaiting_dispensing", _("This order is not waiting for dispensing (%(status)s)."), 409
)
UNREADABLE_CODE = ErrorCode("unreadable_code", _("This code cannot be read. Scan it again or type it in full."))
CONTAINER_CODE = ErrorCode("container_code", _("This is the code of a case or pallet: open it and scan each box."), 409)
NOT_COMMISSIONED = ErrorCode(
    "pack_never_commissioned",
    _("No manufacturer ever issued this code: the box may not be genuine (R20). Set it aside."),
    409,
)
LINE_COMPLETE = ErrorCode("line_complete", _("All boxes of %(product)s for this order are already scanned."), 409)
ALREADY_SCANNED = ErrorCode("already_scanned", _("This box is already scanned for order %(number)s."), 409)
SCAN_NOT_FOUND = ErrorCode("scan_not_found", _("This box is not among the boxes scanned for this order."), 404)
NOT_ALL_SCANNED = ErrorCode("not_all_scanned", _("Scan every box first; still missing: %(missing)s."), 409)

# --- delivery ----------------------------------------------------------------------------------
NOT_READY_FOR_COURIER = ErrorCode("order_not_ready_for_courier", _("This order is not ready for the courier."), 409)
HANDOVER_MISMATCH = ErrorCode(
    "handover_mismatch",
    _("Scan exactly the boxes of this order. Missing: %(missing)s. Not in this order: %(extra)s."),
    409,
)
NOT_IN_TRANSIT = ErrorCode("order_not_in_transit", _("This order is not on its way."), 409)
NOT_A_HOME_DELIVERY = ErrorCode("not_home_delivery", _("This order is picked up at a service station."), 409)
NOT_A_STATION_PICKUP = ErrorCode("not_station_pickup", _("This order is delivered to the patient's home."), 409)
CODE_REQUIRED = ErrorCode("delivery_code_required", _("Enter the delivery code the patient gives you."))
CODE_WRONG = ErrorCode("delivery_code_wrong", _("The delivery code is wrong. %(left)s attempt(s) left."), 409)
CODE_LOCKED = ErrorCode(
    "delivery_code_locked",
    _("Too many wrong delivery codes. The patient can get a new code on their order page."),
    409,
)
NOT_AT_STATION = ErrorCode("order_not_at_station", _("This order has not arrived at the station yet."), 409)
IDENTITY_NOT_CHECKED = ErrorCode(
    "identity_not_checked", _("Check the identity document of the person picking it up first (R18).")
)
CASH_NOT_CONFIRMED = ErrorCode("cash_not_confirmed", _("Confirm that you received %(amount)s yuan in cash."))
