"""Signals other apps may listen to (the registry imports none of them)."""

from django.dispatch import Signal

#: Sent after ``predictions_create`` stored predictions of which some name an item
#: (``version``, ``count``), so monitoring can match them with the consensus at once.
predictions_stored = Signal()
