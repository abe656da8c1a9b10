"""Leaves whose recorded values are rounding noise and cannot be compared across machines.

The attention's key bias adds ``q . b_k`` to every logit of a query alike, which the softmax
cancels: its exact gradient is zero, so what it receives in training is rounding noise, which
Adam scales to learning-rate-sized steps. Its trained values differ by machine (up to 0.02 of
0.04 on a 2-core x86 CPU in December 2026, while every other leaf and the losses agreed to
1e-5), so golden comparisons of trained taggers leave it out.
"""

import re

_KEY_BIAS = re.compile(r"MultiHeadDotProductAttention_\d+\W+key\W+bias")


def rounding_only(name: str) -> bool:
    """True for a flattened leaf name of an attention's key bias."""
    return bool(_KEY_BIAS.search(name))
