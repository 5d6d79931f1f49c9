"""Metrics: pure functions, arrays in, numbers out. Protocol is a parameter, not a copy.

The protocol (official / strict, or any :class:`bench.protocol.Protocol`) and the
shared constants live in :mod:`bench.protocol` (docs/PROTOCOLS.md §4).
"""

from bench.protocol import PROTOCOLS, Protocol, ProtocolLike


def check_protocol(protocol: ProtocolLike) -> Protocol:
    """The :class:`Protocol` for a preset name or object; ValueError otherwise."""
    return Protocol.of(protocol)


__all__ = ["PROTOCOLS", "Protocol", "check_protocol"]
