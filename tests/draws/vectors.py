"""Known-answer vectors of draw algorithm 1 (also printed in docs/draws.md).

Computed once with draws.verify; the tests re-derive the Merkle root and the material
independently (the recursive RFC 6962 definition, a hand-written JSON string).
"""

import hashlib
import hmac

from tests.draws.quicknet_rounds import QUICKNET_ROUNDS, RECORDED_ROUND


def holder(key: str, house_id: int, user_id: int) -> str:
    """DRAWS.md section 2: hex(HMAC-SHA256(key, "{house_id}:{user_id}")[:16])."""
    message = f"{house_id}:{user_id}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).digest()[:16].hex()


# Vector 1: ten tickets (refunded numbers missing), a real quicknet round, 3 alternates.
V1_HOUSE_ID = 42
V1_HOLDER_KEY = "test-holder-key"
V1_TICKET_NUMBERS = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
V1_USER_IDS = [7, 7, 8, 9, 9, 9, 10, 11, 7, 12]
V1_SEED = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
V1_COMMITMENT = "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
V1_HOLDERS = [
    "3f65e5d7d36966542de6547c0fab6458",
    "3f65e5d7d36966542de6547c0fab6458",
    "ea39a8f10a4cd8ef47cafd49e30f5133",
    "02ac52d34149c4322306bb97ae57bc0b",
    "02ac52d34149c4322306bb97ae57bc0b",
    "02ac52d34149c4322306bb97ae57bc0b",
    "d2d729484ff27668e83b9b71d7cd2f16",
    "e643fe7f08a5420adb5570421ecd30b0",
    "3f65e5d7d36966542de6547c0fab6458",
    "413f75a9cf0f8e92908885cf50f753d3",
]
V1_FIRST_LEAF = "00000000000000013f65e5d7d36966542de6547c0fab6458"
V1_TICKETS_ROOT = "32b9136799911c362a6d58e9cd73a8179ed464ed74dd2c8b990bce1c8e1c2a66"
V1_AUDIT_PATH_OF_INDEX_3 = [
    "ab2fdaf735ffb1d1c979835c494f9db3bb2dbe6681f54489b7b6f9c110187d09",
    "92eec25bf92b83d35d825ef1cf29a6640532a81e29cc86c0997a15b3da46dfba",
    "920818301fa955223ac160cb350a6e975846341950da3338da58e6099b928fc1",
    "e32d9b0f0ebfbc64344cef6d188bf282a94101382e896814b5555482eebcec48",
]
V1_BEACON_ROUND = RECORDED_ROUND
V1_BEACON_SIGNATURE = QUICKNET_ROUNDS[RECORDED_ROUND]["signature"]
V1_BEACON_RANDOMNESS = "ae76da5137c6d0a0d3b50d325948b26cc3ff1f804cd7bbca29b9250c2bfe8d67"
V1_MATERIAL = "8ae450bca50d170640a0a0cd51cf9417f5d285ad03fe2d621b39ebb990920f54"
V1_INDICES = [9, 5, 6, 8]
V1_WINNING_TICKET = 89
V1_ALTERNATES = [13, 21, 55]

# Vector 2: a single ticket, manual entropy: the winner is index 0 and there is no alternate.
V2_HOUSE_ID = 7
V2_SEED = "ff" * 32
V2_LEAF = "000000000000000100000000000000000000000000000000"  # ticket 1, holder 00..00
V2_TICKETS_ROOT = "0902816d243a8fbba445fbd018721ae1044cde4c2d19ea5a14d846196f09f964"
V2_RANDOMNESS = "11" * 32
V2_MATERIAL = "0bae3ae05d691cbc488c2f50349e1a2e33e03d22d29d3a8216c36d73b9f5aec4"
V2_INDICES = [0]

# Vector 3: 513 = 2**9 + 1 tickets numbered 1..513, holder of n = first 32 hex of
# SHA-256(str(n)), manual entropy = SHA-256("vector 3 entropy"), seed = SHA-256("vector 3 seed").
V3_HOUSE_ID = 513
V3_SEED = "f9c5bdbffccd1f9e9252a1db5b813741c5e2c1bf3882a798be2970d6beb1e4e7"
V3_TICKETS_ROOT = "4de94e7803d879dfa62d61a2ed70af60ca039a2559bb29e05ca72eb6c1875496"
V3_RANDOMNESS = "9965411c1490575deb8a3798a1f35f4634b66d2892923e6d5d294299171c86a5"
V3_MATERIAL = "00877c05a12b6ed88a0f7ec701c6dd1520686adae10f9b2342ebd64cc9477c2c"
V3_INDICES = [82, 291, 396, 118]
V3_TICKET_NUMBERS = [83, 292, 397, 119]


def v3_holder(ticket_number: int) -> str:
    return hashlib.sha256(str(ticket_number).encode()).hexdigest()[:32]
