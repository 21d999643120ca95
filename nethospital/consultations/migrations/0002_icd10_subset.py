from django.db import migrations


def load_codes(apps, schema_editor):
    from nethospital.consultations.icd10 import CODES

    ICD10Code = apps.get_model("consultations", "ICD10Code")
    for code, name_en, name_zh, chronic in CODES:
        ICD10Code.objects.update_or_create(
            code=code, defaults={"name_en": name_en, "name_zh": name_zh, "is_chronic": chronic}
        )


class Migration(migrations.Migration):
    dependencies = [("consultations", "0001_initial")]

    operations = [migrations.RunPython(load_codes, migrations.RunPython.noop)]
