from django.urls import path

from nethospital.consultations import views

app_name = "consultations"
urlpatterns = [
    path("consultations/", views.mine, name="mine"),
    path("consultations/queue/", views.join_queue, name="join_queue"),
    path("consultations/ask/<int:practitioner_id>/", views.ask, name="ask"),
    path("consultations/from-appointment/<int:appointment_id>/", views.from_appointment, name="from_appointment"),
    path("consultations/icd10/", views.icd_search, name="icd_search"),
    path("consultations/<int:consultation_id>/", views.room, name="room"),
    path("consultations/<int:consultation_id>/waiting/", views.waiting, name="waiting"),
    path("consultations/<int:consultation_id>/cancel/", views.cancel, name="cancel"),
    path("consultations/<int:consultation_id>/invite/", views.invite, name="invite"),
    path("consultations/<int:consultation_id>/accept/", views.accept, name="accept"),
    path("consultations/<int:consultation_id>/visit-type/", views.visit_type, name="visit_type"),
    path("consultations/<int:consultation_id>/refer/", views.refer, name="refer"),
    path("consultations/<int:consultation_id>/record/sign/", views.sign_record, name="sign_record"),
    path("consultations/<int:consultation_id>/record/correct/", views.correct_record, name="correct_record"),
    path("consultations/<int:consultation_id>/record/", views.record, name="record"),
    path("consultations/<int:consultation_id>/record.pdf", views.record_pdf, name="record_pdf"),
    path("consultations/<int:consultation_id>/complete/", views.complete, name="complete"),
    path("consultations/<int:consultation_id>/review/", views.review, name="review"),
    path("consultations/<int:consultation_id>/send/", views.send, name="send"),
    path("consultations/<int:consultation_id>/upload/", views.upload, name="upload"),
    # The address actions.message_payload gives every attachment.
    path(
        "consultations/<int:consultation_id>/files/<int:attachment_id>/",
        views.attachment_file,
        name="file",
    ),
    path("doctor/workbench/", views.workbench, name="workbench"),
    path("doctor/workbench/panel/", views.workbench_panel, name="workbench_panel"),
    path("doctor/workbench/pick/", views.pick_next, name="pick_next"),
    path("hospital-admin/reviews/", views.reviews, name="reviews"),
    path("hospital-admin/reviews/<int:review_id>/", views.moderate, name="moderate"),
]
