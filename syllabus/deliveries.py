"""Where a JetStream delivery sits, read from its reply subject (ADR-15):
`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, or the longer form
`$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>.<token>`.

Read here rather than through nats-py's `msg.metadata`, which parses every field and builds a datetime for each
message: a worker reads two numbers of every job it is given, and a gateway one of every event it follows.
"""

from __future__ import annotations

from nats.aio.msg import Msg

# The short form's token count; the long form has the domain and account hash in front (and a token after).
_SHORT = 9
_LONG_OFFSET = 2


def _tokens(msg: Msg) -> tuple[list[str], int]:
    tokens = (msg.reply or "").split(".")
    long_form = len(tokens) >= _SHORT + _LONG_OFFSET
    if tokens[:2] != ["$JS", "ACK"] or not (len(tokens) == _SHORT or long_form):
        raise ValueError(f"not a JetStream delivery: reply subject {msg.reply!r}")
    return tokens, _LONG_OFFSET if long_form else 0


def stream_sequence(msg: Msg) -> int:
    """The message's sequence in its stream; ValueError for a message that is not a JetStream delivery."""
    tokens, offset = _tokens(msg)
    return int(tokens[5 + offset])


def pending_after(msg: Msg) -> int:
    """How many messages the consumer still held when it delivered `msg`."""
    tokens, offset = _tokens(msg)
    return int(tokens[8 + offset])
