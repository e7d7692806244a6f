from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rlhf_platform import request_context


class Command(BaseCommand):
    help = "Load the demo workspace (demo users for every role, demo data) and print the logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="allow it with DEBUG off (public passwords!)"
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "demo_setup creates users with public passwords; it needs DEBUG=1 or --force"
            )
        from rlhf_platform.demo import demo_workspace_load

        with request_context.bind(request_id_value="demo-setup"):
            users = demo_workspace_load()
        self.stdout.write("Demo users (username / password / roles):")
        for user in users:
            self.stdout.write(f"  {user.username:<12} {user.password:<20} {', '.join(user.roles)}")
