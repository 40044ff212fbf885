"""The output's text as its tokens arrive: pieces that never split a UTF-8 character
(`Detokenizer`), cut before the first stop sequence (`StopText`)."""

from __future__ import annotations

from collections.abc import Sequence

from targets.model.engine import Tokenizer


class Detokenizer:
    """Turns a stream of token ids into text pieces without splitting UTF-8 characters.

    A byte-level BPE token may carry part of a multi-byte character: its decode ends in U+FFFD
    until the next tokens complete it, so such a piece is held back. It is held for at most
    `HOLD_TOKENS` tokens (a UTF-8 character has at most 4 bytes, each token at least one): past
    that the bytes are not a character being completed but invalid, and are sent as U+FFFD, as
    `decode` renders them. `flush()` returns what is still held at the end of the stream, so the
    text of a generation is never empty when its tokens decode to something.
    """

    HOLD_TOKENS = 4

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = 0  # characters of decode(ids[start:]) already sent
        self.start = 0
        self.held = 0  # tokens pushed since the last piece that was sent

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids[self.start:], skip_special_tokens=True)
        self.held += 1
        if text.endswith("\ufffd") and self.held < self.HOLD_TOKENS:
            return ""  # an incomplete multi-byte character: wait for the next token
        piece = text[self.emitted:]
        self.held = 0
        if len(self.ids) - self.start > 16 or text.endswith("\ufffd"):
            # keep decode cost bounded on long outputs; after invalid bytes, start afresh so
            # later tokens never re-decode (and re-send) the bytes already sent
            self.start = len(self.ids)
            self.emitted = 0
        else:
            self.emitted = len(text)
        return piece

    def flush(self) -> str:
        """The text still held back (an unfinished character at the end), once."""
        text = self.tokenizer.decode(self.ids[self.start:], skip_special_tokens=True)
        piece = text[self.emitted:]
        self.start, self.emitted, self.held = len(self.ids), 0, 0
        return piece


class StopText:
    """Ends the output before the first stop sequence (`stop`), as text is produced.

    Text that might be the start of a stop sequence is held back until the next pieces show
    whether it is one: a client never receives part of a stop sequence. `hit` is set once one is
    found; after it, nothing more is passed on.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.longest = max((len(s) for s in self.stops), default=0)
        self.held = ""
        self.hit = False

    def push(self, piece: str) -> str:
        """The part of `piece` (with what was held) that is surely output."""
        if self.hit:
            return ""
        if not self.stops:
            return piece
        text = self.held + piece
        found = [i for s in self.stops if (i := text.find(s)) >= 0]
        if found:
            self.hit, self.held = True, ""
            return text[:min(found)]
        keep = next((k for k in range(min(len(text), self.longest - 1), 0, -1)
                     if any(s.startswith(text[-k:]) for s in self.stops)), 0)
        self.held = text[len(text) - keep:]
        return text[:len(text) - keep]

    def flush(self) -> str:
        """What is still held at the end of the output (no stop sequence came)."""
        out, self.held = self.held, ""
        return out
