"""Pages understood in the background: the queue the request path offers pages to (``queue``),
the workers that encode them (``worker``, ``admatch analyzer``) and the profiles they store for
every serving process (``profiles``)."""
