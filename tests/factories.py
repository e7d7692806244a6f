"""factory_boy factories shared by the whole suite."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from governance import security_audit

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A user; ``roles=[...]`` puts them in role groups."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set(Group.objects.filter(name__in=extracted))
        if create:
            self.save()

    @classmethod
    def _generate(cls, strategy, params):
        # Personas are the tests' preconditions, not actions under test: they are made
        # off the audit trail, so a test of the trail sees only what the test itself does.
        with security_audit.silenced():
            return super()._generate(strategy, params)
