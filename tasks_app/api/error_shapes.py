"""The shapes of the API's errors, as the schema states them (pqh_site/errors.py writes them)."""

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """An error: what is wrong, in one sentence."""

    detail = serializers.CharField()


class FieldErrorsSerializer(serializers.Serializer):
    """Validation errors: each field named with its messages (mapped in api/openapi.py)."""


class UserCapErrorSerializer(serializers.Serializer):
    """429: the user already has as many tasks queued or running as they may."""

    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["user_cap"])
    limit = serializers.IntegerField(help_text="The user's cap on active tasks.")
    active = serializers.IntegerField(help_text="The user's tasks queued or running now.")


class DoorRefusalSerializer(serializers.Serializer):
    """429 at the door: your request rate, or too many failed logins from your address."""

    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["rate_limited", "locked_out"])


class UnavailableErrorSerializer(serializers.Serializer):
    """503: the queue is full, or Redis or PostgreSQL cannot be reached; nothing was recorded."""

    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["queue_full", "unavailable"])
