"""The published draw documents (DRAWS.md section 5), as the API and ``verify_draw`` render them."""

from collections.abc import Iterator

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from draws import selectors
from draws.models import Draw


class BlankAsNullCharField(serializers.CharField):
    """Stored as "" until known; published as null."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value: str) -> str | None:
        return value or None


class VerificationSerializer(serializers.Serializer):
    """Everything a verifier needs besides the ticket list."""

    algorithm_version = serializers.IntegerField(read_only=True, allow_null=True)
    commitment = serializers.SerializerMethodField(help_text="SHA-256 hex of the seed.")
    seed = BlankAsNullCharField(help_text="The committed seed, published from close on.")
    tickets_root = BlankAsNullCharField()
    tickets_count = serializers.IntegerField(read_only=True, allow_null=True)
    beacon_chain = BlankAsNullCharField()
    beacon_round = serializers.IntegerField(read_only=True, allow_null=True)
    beacon_randomness = BlankAsNullCharField()
    beacon_signature = serializers.SerializerMethodField(
        help_text='Hex; "" for manual entropy; null until known.'
    )
    entropy_source = serializers.SerializerMethodField()
    winning_index = serializers.IntegerField(read_only=True, allow_null=True)
    winning_ticket_number = serializers.IntegerField(read_only=True, allow_null=True)
    alternates = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    def get_commitment(self, draw: Draw) -> str | None:
        return draw.commitment or draw.house.draw_commitment or None

    def get_beacon_signature(self, draw: Draw) -> str | None:
        if not draw.entropy_source:
            return None
        return draw.beacon_signature  # "" for manual entropy (DRAWS.md section 3)

    @extend_schema_field(
        serializers.ChoiceField(choices=Draw.EntropySource.choices, allow_null=True)
    )
    def get_entropy_source(self, draw: Draw) -> str | None:
        return draw.entropy_source or None


class DisqualificationSerializer(serializers.Serializer):
    ticket_number = serializers.IntegerField()
    at = serializers.CharField()
    reason = serializers.CharField(required=False, help_text="Shown to staff only.")


class WinnerSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()


class DrawSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    house_id = serializers.IntegerField(read_only=True)
    status = serializers.ChoiceField(choices=Draw.Status.choices, read_only=True)
    closed_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the ticket list froze."
    )
    completed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    winning_ticket_number = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The algorithm's winner (null until completed)."
    )
    awarded_ticket_number = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Who gets the house: the winner, or after a disqualification the first "
        "alternate not disqualified.",
    )
    supersedes_draw_id = serializers.IntegerField(
        source="supersedes_id", read_only=True, allow_null=True
    )
    superseded_by_draw_id = serializers.SerializerMethodField()
    disqualified = serializers.SerializerMethodField()
    winner = serializers.SerializerMethodField(
        help_text="Only for the winner and staff; null for everyone else."
    )
    verification = VerificationSerializer(source="*", read_only=True)

    def get_superseded_by_draw_id(self, draw: Draw) -> int | None:
        successor = getattr(draw, "superseded_by", None) if draw.status == "superseded" else None
        return successor.pk if successor is not None else None

    @extend_schema_field(DisqualificationSerializer(many=True))
    def get_disqualified(self, draw: Draw) -> list[dict]:
        staff = self._viewer_is_staff()
        return [
            {
                "ticket_number": entry["ticket_number"],
                "at": entry["at"],
                **({"reason": entry["reason"]} if staff else {}),
            }
            for entry in draw.disqualified
        ]

    @extend_schema_field(WinnerSerializer(allow_null=True))
    def get_winner(self, draw: Draw) -> dict | None:
        viewer = self._viewer()
        if viewer is None or draw.awarded_ticket_number is None:
            return None
        winner = selectors.winner(draw)
        if winner is None or not (viewer.is_staff or viewer.pk == winner["user_id"]):
            return None
        return winner

    def _viewer(self) -> object | None:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return user if user is not None and user.is_authenticated else None

    def _viewer_is_staff(self) -> bool:
        viewer = self._viewer()
        return bool(viewer is not None and viewer.is_staff)


class LeafSerializer(serializers.Serializer):
    ticket_number = serializers.IntegerField()
    holder = serializers.CharField(help_text="Per-house pseudonym of the holder (32 hex).")


class TicketsDocumentSerializer(serializers.Serializer):
    """Schema only: the body is streamed by ``ticket_document_chunks``."""

    draw_id = serializers.IntegerField()
    house_id = serializers.IntegerField()
    tickets_root = serializers.CharField()
    tickets_count = serializers.IntegerField()
    leaves = LeafSerializer(many=True)


def ticket_document_chunks(draw: Draw) -> Iterator[bytes]:
    """The frozen list as one JSON document, a few thousand leaves per chunk."""
    yield (
        f'{{"draw_id":{draw.pk},"house_id":{draw.house_id},'
        f'"tickets_root":"{draw.tickets_root}","tickets_count":{draw.tickets_count},'
        f'"leaves":['
    ).encode()
    separator = ""
    for chunk in selectors.leaf_chunks(draw.ticket_list_id, draw.tickets_count):
        view = memoryview(chunk)
        parts = [
            f'{{"ticket_number":{int.from_bytes(view[i : i + 8], "big")},'
            f'"holder":"{view[i + 8 : i + 24].hex()}"}}'
            for i in range(0, len(view), 24)
        ]
        yield (separator + ",".join(parts)).encode()
        separator = ","
    yield b"]}"


class ConductRequestSerializer(serializers.Serializer):
    beacon_round = serializers.IntegerField(required=False, min_value=1)
    beacon_signature = serializers.CharField(required=False, max_length=192)
    entropy = serializers.CharField(required=False, max_length=64)
    source = serializers.CharField(required=False, max_length=1000)


class TicketProofSerializer(serializers.Serializer):
    ticket_number = serializers.IntegerField()
    holder = serializers.CharField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    audit_path = serializers.ListField(child=serializers.CharField())
    tickets_root = serializers.CharField()
    draw_id = serializers.IntegerField()


class PlayerStatsSerializer(serializers.Serializer):
    tickets_total = serializers.IntegerField()
    tickets_active = serializers.IntegerField()
    houses_entered = serializers.IntegerField()
    wins = serializers.IntegerField()
    total_spent = serializers.DecimalField(max_digits=14, decimal_places=2)
