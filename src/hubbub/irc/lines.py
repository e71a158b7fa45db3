"""Lines on the wire: framing, decoding, encoding and splitting.

- Framing (RFC 1459 §2.3, IRCv3 message-tags): lines end in CRLF (a bare LF is
  accepted); the body of a line is at most 512 bytes and the tags part at most
  8191 bytes, so :data:`MAX_LINE` bounds everything we keep. A buffer that
  grows past it without a newline is an error, never an unbounded allocation.
- Decoding: UTF-8, with a latin-1 fallback for each line that is not valid
  UTF-8, so no byte is ever dropped (latin-1 maps every byte). Tags are decoded
  the same way.
- Splitting: outgoing text is cut so that the line the server relays,
  ``:nick!user@host PRIVMSG target :text\\r\\n``, fits in 512 bytes, on code
  point boundaries, preferring the last space of the chunk.
"""

from __future__ import annotations

from irctokens.formatting import format as format_line
from irctokens.line import Line, tokenise

from .errors import LineTooLong, ProtocolError

#: The IRC line limit without tags, CRLF included (RFC 1459 §2.3).
LINE_LIMIT = 512
#: Tags a server may send: 8191 bytes including the leading ``@`` and the space.
SERVER_TAGS_LIMIT = 8191
#: Tags a client may send: 4094 bytes (IRCv3 message-tags, "Size limit").
CLIENT_TAGS_LIMIT = 4094
#: The longest line kept: tags plus body.
MAX_LINE = SERVER_TAGS_LIMIT + LINE_LIMIT
#: Room for a host we do not know yet (RFC 1123 name of 63 + slack for cloaks).
UNKNOWN_HOST_LEN = 63
UNKNOWN_USER_LEN = 10


def decode(raw: bytes) -> str:
    """Decode one line: UTF-8, else latin-1 (every byte kept)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse(raw: bytes) -> Line:
    """Parse one line (without CRLF) into tokens; :class:`ProtocolError` if it is garbage."""
    text = decode(raw)
    # NUL, CR and LF are not allowed inside a line (RFC 1459 §2.3.1); cut there
    # as irctokens does, rather than pass them on.
    for bad in ("\x00", "\r", "\n"):
        cut = text.find(bad)
        if cut != -1:
            text = text[:cut]
    if not text.strip(" "):
        raise ProtocolError("empty line")
    try:
        line = tokenise(text)
    except (ValueError, IndexError) as exc:
        raise ProtocolError(f"unparsable line: {exc}") from exc
    if not line.command.isalnum():
        raise ProtocolError(f"bad command {line.command[:32]!r}")
    return line


class LineBuffer:
    """Splits a byte stream into lines, with a bound on line length."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete lines (without CR/LF, empty lines skipped).

        Raises :class:`LineTooLong` when a line, or the unterminated rest,
        passes ``max_line``; the buffer is cleared so the caller can go on or
        close.
        """
        self._buf += data
        lines: list[bytes] = []
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end == -1:
                break
            line = bytes(self._buf[start:end]).rstrip(b"\r")
            start = end + 1
            if len(line) > self.max_line:
                del self._buf[:start]
                raise LineTooLong(f"line of {len(line)} bytes (limit {self.max_line})")
            if line:
                lines.append(line)
        del self._buf[:start]
        if len(self._buf) > self.max_line:
            size = len(self._buf)
            self._buf.clear()
            raise LineTooLong(f"{size} bytes without end of line (limit {self.max_line})")
        return lines

    def clear(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> int:
        return len(self._buf)


def encode(line: Line) -> bytes:
    """Format a line for the wire, with CRLF. Refuses CR, LF and NUL inside."""
    text: str = line.format()
    if any(c in text for c in "\r\n\x00"):
        raise ValueError("CR, LF or NUL inside an IRC line")
    return text.encode("utf-8") + b"\r\n"


def tags_size(tags: dict[str, str] | None) -> int:
    """Bytes the tags take on the wire: ``@a=b;c `` (0 when none)."""
    if not tags:
        return 0
    formatted: str = format_line(tags, None, "X", [])
    return len(formatted.encode("utf-8")) - 1  # minus "X"


def text_budget(prefix: str, command: str, target: str, extra: int = 0) -> int:
    """Bytes of text that fit in one line as the server relays it.

    ``prefix`` is how the server shows us (``nick!user@host``); the relayed line
    is ``:prefix COMMAND target :text\\r\\n``. ``extra`` is reserved for
    wrapping, e.g. the CTCP ``\\x01ACTION `` and ``\\x01``.
    """
    fixed = len(f":{prefix} {command} {target} :".encode()) + 2 + extra
    return max(LINE_LIMIT - fixed, 0)


def split_text(text: str, budget: int) -> list[str]:
    """Split ``text`` into chunks of at most ``budget`` UTF-8 bytes.

    Cuts fall on code point boundaries (a UTF-8 sequence is never split) and,
    where a chunk has a space, after its last space so words stay whole; the
    space stays at the end of the chunk, so joining the chunks gives the text
    back exactly. Newlines start a new chunk (CR is dropped); empty lines are
    skipped.
    """
    if budget < 4:  # room for at least one code point of any length
        raise ValueError(f"no room for text in the line (budget {budget} bytes)")
    # Lone surrogates (from a careless JSON client) cannot be UTF-8: make them U+FFFD.
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    chunks: list[str] = []
    for paragraph in text.replace("\r", "").split("\n"):
        rest = paragraph
        while rest:
            data = rest.encode("utf-8")
            if len(data) <= budget:
                chunks.append(rest)
                break
            cut = budget
            # back up to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx)
            while cut > 0 and (data[cut] & 0xC0) == 0x80:
                cut -= 1
            head = data[:cut]
            space = head.rfind(b" ")
            if space > 0:
                head = head[: space + 1]
            piece = head.decode("utf-8")
            chunks.append(piece)
            rest = rest[len(piece) :]
    return chunks
