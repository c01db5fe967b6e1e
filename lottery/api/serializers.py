from django.contrib.auth import get_user_model
from rest_framework import serializers

from lottery.models import PlayerProfile

User = get_user_model()


class RegisterRequestSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


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


class PlayerUpdateSerializer(serializers.Serializer):
    notifications = serializers.BooleanField(
        required=False, help_text="false switches every notification email off."
    )
