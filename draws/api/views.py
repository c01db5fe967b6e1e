"""Draw endpoints: the published documents, staff conduct, proofs and player stats. Thin."""

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import exceptions as domain
from core.api.query import reject_repeated
from core.api.schema import problems
from draws import selectors
from draws.api.serializers import (
    ConductRequestSerializer,
    DrawSerializer,
    PlayerStatsSerializer,
    TicketProofSerializer,
    TicketsDocumentSerializer,
    ticket_document_chunks,
)
from draws.models import Draw
from draws.services.running import conduct_draw

HOUSE_ID_FILTER = OpenApiParameter(
    name="house_id",
    type={"type": "integer", "minimum": 0},
    location=OpenApiParameter.QUERY,
    description="Only this house.",
)


class DrawListView(ListAPIView):
    """Draws, newest first; a redraw shows both the superseded draw and its successor."""

    serializer_class = DrawSerializer

    def get_queryset(self):
        reject_repeated(self.request.query_params, ["house_id"])
        raw = self.request.query_params.get("house_id")
        house_id = None
        if raw is not None:
            if not (raw.isascii() and raw.isdigit()):
                raise domain.ValidationFailed(
                    [{"field": "house_id", "code": "invalid", "message": "An integer id."}]
                )
            house_id = int(raw)
        return selectors.draws_list(house_id=house_id)

    @extend_schema(
        operation_id="draws_list",
        parameters=[HOUSE_ID_FILTER],
        responses={200: DrawSerializer(many=True), **problems(401, 422)},
        tags=["draws"],
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class DrawDetailView(RetrieveAPIView):
    serializer_class = DrawSerializer
    lookup_url_kwarg = "draw_id"

    def get_queryset(self):
        return selectors.draws_list()

    @extend_schema(
        operation_id="draws_retrieve",
        description="The draw and its verification record (DRAWS.md section 5).",
        responses={200: DrawSerializer, **problems(401, 404)},
        tags=["draws"],
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class DrawTicketsView(APIView):
    @extend_schema(
        operation_id="draws_tickets",
        description="The frozen ticket list the root covers, every leaf in order, in one "
        "streamed body (no pagination).",
        responses={200: TicketsDocumentSerializer, **problems(401, 404, 409)},
        tags=["draws"],
    )
    def get(self, request: Request, draw_id: int) -> StreamingHttpResponse:
        draw = Draw.objects.filter(pk=draw_id).first()
        if draw is None:
            raise domain.NotFound()
        if not draw.is_frozen:
            raise domain.InvalidState("This draw's ticket list is not frozen yet.")
        return StreamingHttpResponse(ticket_document_chunks(draw), content_type="application/json")


class CanConductDraws(IsAdminUser):
    """Staff holding ``draws.conduct_draw`` (the Lottery operators group, superusers)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return super().has_permission(request, view) and request.user.has_perm("draws.conduct_draw")


class DrawConductView(APIView):
    permission_classes = [CanConductDraws]

    @extend_schema(
        operation_id="draws_conduct",
        description="Staff with the `draws.conduct_draw` permission only. "
        "Either `{beacon_round, beacon_signature}` (the round fixed at "
        "close, pasted from any drand relay; verified) or `{entropy, source}` (manual: 64 hex "
        "and where it came from). The same body again answers the recorded result.",
        request=ConductRequestSerializer,
        responses={
            200: DrawSerializer,
            **problems(
                400,
                401,
                403,
                404,
                409,
                422,
                codes={
                    409: "invalid_state (not frozen yet, or completed with other entropy)",
                    422: "validation_error (wrong round, invalid signature, bad entropy)",
                },
            ),
        },
        tags=["draws"],
    )
    def post(self, request: Request, draw_id: int) -> Response:
        payload = ConductRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        draw = conduct_draw(draw_id=draw_id, actor=request.user, **payload.validated_data)
        draw = selectors.draws_list().get(pk=draw.pk)
        return Response(DrawSerializer(draw, context={"request": request}).data)


class MyTicketProofView(APIView):
    @extend_schema(
        operation_id="me_ticket_proof",
        description="The RFC 6962 inclusion proof of one's own ticket in the frozen list.",
        responses={200: TicketProofSerializer, **problems(401, 404, 409)},
        tags=["players"],
    )
    def get(self, request: Request, ticket_id: int) -> Response:
        proof = selectors.ticket_proof(user_id=request.user.pk, ticket_id=ticket_id)
        return Response(TicketProofSerializer(proof).data)


class MyStatsView(APIView):
    @extend_schema(
        operation_id="me_stats",
        responses={200: PlayerStatsSerializer, **problems(401)},
        tags=["players"],
    )
    def get(self, request: Request) -> Response:
        return Response(PlayerStatsSerializer(selectors.player_stats(user_id=request.user.pk)).data)
