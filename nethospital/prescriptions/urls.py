from django.urls import path

from nethospital.prescriptions import views

app_name = "prescriptions"
urlpatterns = [
    # The doctor (R8): from a consultation, a draft; its head, items, overrides; sign; amend, cancel.
    path("consultations/<int:consultation_id>/prescriptions/new/", views.new, name="new"),
    path("prescriptions/<int:prescription_id>/edit/", views.edit, name="edit"),
    path("prescriptions/<int:prescription_id>/head/", views.update_head, name="head"),
    path("prescriptions/<int:prescription_id>/items/", views.update_items, name="items"),
    path("prescriptions/<int:prescription_id>/override/", views.override, name="override"),
    path("prescriptions/<int:prescription_id>/sign/", views.sign, name="sign"),
    path("prescriptions/<int:prescription_id>/amend/", views.amend, name="amend"),
    path("prescriptions/<int:prescription_id>/cancel/", views.cancel, name="cancel"),
    path("prescriptions/drugs/", views.drug_search, name="drug_search"),
    path("doctor/prescriptions/", views.doctor_list, name="doctor_list"),
    # The patient's side, and everyone who may see a prescription.
    path("prescriptions/", views.my_prescriptions, name="mine"),
    path("prescriptions/<int:prescription_id>/", views.detail, name="detail"),
    path("prescriptions/<int:prescription_id>/notice/", views.confirm_notice, name="confirm_notice"),
    path("prescriptions/<int:prescription_id>/pdf/", views.prescription_pdf, name="pdf"),
    # The pharmacist (R10).
    path("pharmacist/prescriptions/", views.review_queue, name="review_queue"),
    path("pharmacist/prescriptions/<int:prescription_id>/", views.review, name="review"),
    # Public: is this prescription authentic? (no login, no patient data)
    path("verify/prescription/<int:prescription_id>/", views.verify, name="verify"),
    # The regulator only (R12).
    path("regulator/prescribing-statistics/", views.statistics, name="statistics"),
]
