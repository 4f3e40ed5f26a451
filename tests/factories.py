"""factory-boy factories for the models of every app."""

import factory
from django.contrib.auth import get_user_model

from consortium.models import ApiKey, Consortium, Membership, Participant, hash_api_key


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}@example.test")
    email = factory.LazyAttribute(lambda user: user.username)
    password = factory.django.Password("correct horse battery staple")


class ConsortiumFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consortium

    slug = factory.Sequence(lambda n: f"consortium-{n}")
    name = factory.LazyAttribute(lambda c: c.slug.replace("-", " ").title())


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    consortium = factory.SubFactory(ConsortiumFactory)
    slug = factory.Sequence(lambda n: f"factory-{n}")
    name = factory.LazyAttribute(lambda p: p.slug.replace("-", " ").title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    consortium = factory.SubFactory(ConsortiumFactory)
    role = "finance"
    participant = None


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """An API key; the secret is available as ``key.raw_key`` on the built object only."""

    class Meta:
        model = ApiKey

    consortium = factory.SubFactory(ConsortiumFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    scopes = factory.LazyFunction(lambda: ["ingest"])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        lookup_id, raw_key = ApiKey.generate()
        api_key = super()._create(model_class, *args, lookup_id=lookup_id, key_hash=hash_api_key(raw_key), **kwargs)
        api_key.raw_key = raw_key
        return api_key
