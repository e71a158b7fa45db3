"""Wire protocols as plain state machines, without I/O (STYLE.md, 1).

``wire``: WebSocket frame bytes and the client operations of ``docs/protocol.md``.
``session``: one WebSocket connection's protocol state (positions, resume,
catch-up), fed decoded frames and bus events, giving frames and actions back.
"""
