from django.contrib import admin

from nethospital.consultations.models import CallRecord, Consultation, ICD10Code, Review, VisitRecord


class NoDeleteAdmin(admin.ModelAdmin):
    """Clinical rows are never deleted (R21): the back office may look, not remove."""

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Consultation)
class ConsultationAdmin(NoDeleteAdmin):
    list_display = ["id", "kind", "channel", "status", "visit_type", "hospital", "created_at"]
    list_filter = ["kind", "status", "visit_type"]
    readonly_fields = [f.name for f in Consultation._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(VisitRecord)
class VisitRecordAdmin(NoDeleteAdmin):
    list_display = ["id", "consultation", "version", "is_current", "signed_at"]
    readonly_fields = [f.name for f in VisitRecord._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(CallRecord)
class CallRecordAdmin(NoDeleteAdmin):
    list_display = ["call_id", "consultation", "outcome", "started_at", "ended_at"]
    readonly_fields = [f.name for f in CallRecord._meta.fields]


@admin.register(Review)
class ReviewAdmin(NoDeleteAdmin):
    list_display = ["id", "practitioner", "rating", "status", "created_at"]
    list_filter = ["status"]


@admin.register(ICD10Code)
class ICD10CodeAdmin(admin.ModelAdmin):
    list_display = ["code", "name_en", "name_zh", "is_chronic"]
    search_fields = ["code", "name_en", "name_zh"]
