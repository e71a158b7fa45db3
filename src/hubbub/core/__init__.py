"""The domain: model, events, errors and the Hub service.

No web framework, no SQL, no sockets here. ``store`` and ``bus`` implement the
interfaces declared in :mod:`hubbub.core.ports`.
"""
