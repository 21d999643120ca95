"""The pharmacy's side of the recall contract (``traceability.recalls``, setting
``NETHOSPITAL_TRACE_RECIPIENTS``, default this function): which patient each dispensed box went to,
from the dispensing record (``DispensedPack``). Recalls use it to tell the patients who received a
recalled batch; the journey page uses it to let the patient's side see their boxes' way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nethospital.accounts.models import Patient
from nethospital.pharmacy.models import DispensedPack


def patients_for_packs(identifiers: Sequence[str]) -> Mapping[str, Patient]:
    """For each canonical pack identifier that was dispensed to a patient, that patient."""
    wanted = list(dict.fromkeys(identifiers))
    result: dict[str, Patient] = {}
    for start in range(0, len(wanted), 1000):
        rows = DispensedPack.objects.filter(identifier__in=wanted[start : start + 1000]).select_related("patient")
        for row in rows:
            result[row.identifier] = row.patient
    return result
