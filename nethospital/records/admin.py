from django.contrib import admin

from nethospital.records.models import Registration


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ("patient", "hospital", "medical_record_number", "registered_at")
    readonly_fields = ("patient", "hospital", "medical_record_number", "registered_at", "registered_by")
