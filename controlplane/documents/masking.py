"""How a recipient's name is shown to anyone but its organisation: initials only (issuance and the
public verdict share it; kept apart so the public verifier imports no issuance or caller code)."""

from __future__ import annotations

import unicodedata


def mask_recipient(name: str) -> str:
    """'Ahmed Karim Salih' -> 'A**** K**** S****': the first letter of each word (with its marks)."""
    words = []
    for word in name.split():
        first = word[0]
        for char in word[1:]:
            if not unicodedata.combining(char):
                break
            first += char  # keep Arabic harakat and other combining marks with their letter
        words.append(first + "****")
    return " ".join(words)
