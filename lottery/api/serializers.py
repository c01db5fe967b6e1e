from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lottery.models import PlayerProfile

User = get_user_model()


@extend_schema_field(
    {
        "type": "string",
        "writeOnly": True,
        "minLength": 8,
        "maxLength": 128,
        "description": "At least 8 characters (Django's password validators: not too "
        "common, not all digits, not too close to the username or email; "
        "422 `validation_error` otherwise).",
    }
)
class PasswordField(serializers.CharField):
    pass


class RegisterRequestSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = serializers.EmailField(max_length=254)
    password = PasswordField(max_length=128, write_only=True, trim_whitespace=False)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class PlayerSerializer(serializers.ModelSerializer):
    is_verified = serializers.BooleanField(source="player_profile.is_verified", read_only=True)
    account_status = serializers.ChoiceField(
        source="player_profile.account_status",
        choices=PlayerProfile.AccountStatus.choices,
        read_only=True,
    )
    notifications = serializers.BooleanField(
        source="player_profile.notifications_enabled",
        read_only=True,
        help_text="Whether the player gets emails (purchases, watched houses, draws).",
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "is_verified",
            "account_status",
            "notifications",
            "date_joined",
        ]
        read_only_fields = fields


class StrictBooleanField(serializers.BooleanField):
    """JSON ``true``/``false`` only, as the schema says (DRF also takes 0, 1, "yes", "on"...)."""

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class PlayerUpdateSerializer(serializers.Serializer):
    notifications = StrictBooleanField(
        required=False, help_text="false switches every notification email off."
    )
