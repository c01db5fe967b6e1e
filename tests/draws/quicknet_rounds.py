"""Real drand quicknet rounds, recorded from a public source (no network in the tests).

Copied from ChainSafe/forest, src/beacon/tests/fixtures/drand_quicknet.json (the same
rounds 2 and 3 appear in src/beacon/signatures/tests.rs, each citing
https://api.drand.sh/52db9ba7.../public/{round}). Every round here verifies under
draws.verify.QUICKNET, and its randomness is SHA-256 of its signature.
"""

QUICKNET_ROUNDS: dict[int, dict[str, str]] = {
    1: {
        "randomness": "1466a6cd24e327188770752f6134001c64d6efcc590ccc26b721611ad96f165a",
        "signature": "b55e7cb2d5c613ee0b2e28d6750aabbb78c39dcc96bd9d38c2c2e12198df9557"
        "1de8e8e402a0cc48871c7089a2b3af4b",
    },
    2: {
        "randomness": "5782d6987841c654515a0e72b2d1ebb4e741234042c37cb19608ae50d93fb60c",
        "signature": "b6b6a585449b66eb12e875b64fcbab3799861a00e4dbf092d99e969a5eac57dd"
        "3f798acf61e705fe4f093db926626807",
    },
    3: {
        "randomness": "7ef4621ace1c6da4eb2eee7cd901f81385bca5b189771ec0f08d0d2566dd1a21",
        "signature": "b3fab6df720b68cc47175f2c777e86d84187caab5770906f515ff1099cb01e4d"
        "eaa027075d860823e49477b93c72bd64",
    },
    30662982: {
        "randomness": "ae76da5137c6d0a0d3b50d325948b26cc3ff1f804cd7bbca29b9250c2bfe8d67",
        "signature": "8b3edd0d42a2fa36ac15641a2dea2e4f4895acec2ef72ef39e5b6138f0346fb6"
        "b046dde1b4b3d09ff5fe8a6a7acd674a",
    },
}

RECORDED_ROUND = 30662982
RECORDED_SIGNATURE = QUICKNET_ROUNDS[RECORDED_ROUND]["signature"]


def flip_bit(signature_hex: str, bit: int) -> str:
    """The signature with one bit flipped (bit 0 = the lowest bit of the last byte)."""
    raw = bytearray(bytes.fromhex(signature_hex))
    raw[-1 - bit // 8] ^= 1 << (bit % 8)
    return raw.hex()
