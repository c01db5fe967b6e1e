from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import exceptions as domain
from core.api.schema import problems
from core.ratelimit import body_username, client_ip, enforce_rate_limit
from lottery import selectors, services
from lottery.api.serializers import (
    PlayerSerializer,
    PlayerUpdateSerializer,
    RegisterRequestSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        operation_id="auth_register",
        request=RegisterRequestSerializer,
        responses={201: PlayerSerializer, **problems(400, 413, 422, 429, 503)},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        enforce_rate_limit(
            request, group="auth.register", rate=settings.RATE_LIMIT_REGISTER_PER_IP, key=client_ip
        )
        serializer = RegisterRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.register_player(**serializer.validated_data)
        return Response(
            PlayerSerializer(selectors.player_with_profile(user.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class TokenView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        operation_id="auth_token",
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, **problems(400, 401, 413, 422, 429, 503)},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        enforce_rate_limit(
            request, group="auth.token.ip", rate=settings.RATE_LIMIT_TOKEN_PER_IP, key=client_ip
        )
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        enforce_rate_limit(
            request,
            group="auth.token.username",
            rate=settings.RATE_LIMIT_TOKEN_PER_USERNAME,
            key=body_username,
        )
        user = authenticate(request, **serializer.validated_data)
        if user is None:
            raise domain.NotAuthenticated("Invalid username or password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class MeView(APIView):
    @extend_schema(
        operation_id="me",
        responses={200: PlayerSerializer, **problems(401)},
        tags=["players"],
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.player_summary(request.user.pk))

    @extend_schema(
        operation_id="me_update",
        request=PlayerUpdateSerializer,
        responses={200: PlayerSerializer, **problems(400, 401, 413, 415, 422, 503)},
        tags=["players"],
    )
    def patch(self, request: Request) -> Response:
        serializer = PlayerUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if "notifications" in serializer.validated_data:
            services.set_notifications(
                user=request.user, enabled=serializer.validated_data["notifications"]
            )
        return Response(selectors.player_summary(request.user.pk))
