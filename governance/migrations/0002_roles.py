"""Create the role groups.  Their permissions are declared in governance.roles and applied
after every migrate (permissions themselves only exist after post_migrate)."""

from django.db import migrations

ROLE_NAMES = ["admin", "researcher", "annotator", "reviewer", "ethics_committee", "viewer"]


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLE_NAMES:
        Group.objects.get_or_create(name=name)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_NAMES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create_roles, delete_roles)]
