"""Metrics: pure functions, arrays in, numbers out. Protocol is a parameter, not a copy."""

PROTOCOLS = ("official", "strict")


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return protocol
