from django.db import migrations


def load_catalogue(apps, schema_editor):
    """The packaged seed catalogue (prescriptions/data/*.csv) in every database, tests and demo alike.
    Later changes to the CSV files reach an existing database through ``nethospital import_drugs``."""
    from nethospital.prescriptions.catalogue import DATA_DIR, CatalogueModels, import_catalogue

    import_catalogue(DATA_DIR, models=CatalogueModels.from_apps(apps), using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("prescriptions", "0001_initial")]

    # Reversing leaves the rows: prescriptions may refer to them, and unapplying 0001 drops the tables.
    operations = [migrations.RunPython(load_catalogue, migrations.RunPython.noop)]
