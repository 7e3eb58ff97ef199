"""How many words a text has, in any script: languages written without spaces between words (Chinese, Japanese,
Thai, Lao, Khmer, Myanmar) have their words counted from their characters, so that a Japanese lesson meets the
same length as an English one."""

from __future__ import annotations

import math
import re

# About two characters make a word in Chinese and Japanese text (a rough measure that suits length limits), and in
# the Southeast Asian scripts written without spaces.
CHARACTERS_PER_WORD = 2
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]+"
)


def count_words(text: str) -> int:
    unspaced = sum(len(run) for run in _UNSPACED.findall(text))
    spaced = len(_UNSPACED.sub(" ", text).split())
    return spaced + math.ceil(unspaced / CHARACTERS_PER_WORD)
