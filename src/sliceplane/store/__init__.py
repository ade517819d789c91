from sliceplane.store.base import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
    Store,
    StoreError,
    StoreUnavailableError,
    ValueTooLargeError,
    WatchEvent,
    WatchOverflowError,
    open_store,
)

__all__ = [
    "CompactedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "RevisionMismatchError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "ValueTooLargeError",
    "WatchEvent",
    "WatchOverflowError",
    "open_store",
]
