from django.urls import path

from nethospital.scheduling import views

app_name = "scheduling"
urlpatterns = [
    path("doctors/", views.search, name="search"),
    path("doctors/<int:doctor_id>/", views.doctor, name="doctor"),
    path("slots/<int:slot_id>/book/", views.confirm_booking, name="confirm_booking"),
    path("appointments/", views.my_appointments, name="my_appointments"),
    path("appointments/<int:appointment_id>/cancel/", views.cancel, name="cancel"),
    path("appointments/<int:appointment_id>/reschedule/", views.reschedule, name="reschedule"),
    path("appointments/<int:appointment_id>/calendar.ics", views.calendar, name="calendar"),
    path("waitlist/join/", views.join_waitlist, name="join_waitlist"),
    path("waitlist/<int:entry_id>/accept/", views.accept_offer, name="accept_offer"),
    path("waitlist/<int:entry_id>/leave/", views.leave_waitlist, name="leave_waitlist"),
    path("doctor/day/", views.doctor_day, name="doctor_day"),
    path("appointments/<int:appointment_id>/mark/", views.mark, name="mark"),
    path("schedules/<int:doctor_id>/", views.schedule, name="schedule"),
    path("notifications/", views.notifications, name="notifications"),
]
