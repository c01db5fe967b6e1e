from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reservations.api.houses import HouseSerializer
from watchlist.models import WatchlistItem


class WatchRequestSerializer(serializers.Serializer):
    house_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class WatchlistItemSerializer(serializers.ModelSerializer):
    """A watched house with its live availability (``availability`` in the context)."""

    house_id = serializers.IntegerField(read_only=True)
    watched_at = serializers.DateTimeField(source="created_at", read_only=True)
    house = serializers.SerializerMethodField()

    class Meta:
        model = WatchlistItem
        fields = ["house_id", "watched_at", "house"]
        read_only_fields = fields

    @extend_schema_field(HouseSerializer)
    def get_house(self, item: WatchlistItem) -> dict:
        return HouseSerializer(item.house, context=self.context).data
