"""Conversations: who spoke when (by channel or by voice), and how each party felt.

:func:`conversation_timeline` gives one timeline with a ``party`` on every segment
(:mod:`emovox.conversation.parties`); :func:`diarise` tells voices apart in a mono recording
(:mod:`emovox.conversation.diarise`, with the GE2E encoder of :mod:`emovox.conversation.speaker`).
"""

from emovox.conversation.diarise import Turn, diarise
from emovox.conversation.parties import PartySpec, conversation_timeline, load_channels, parse_parties, party_names

__all__ = ["PartySpec", "Turn", "conversation_timeline", "diarise", "load_channels", "parse_parties", "party_names"]
