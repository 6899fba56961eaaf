"""The event bus: one broadcaster connection per process, a hub that orders events and
hands them to this process's subscribers, and replay from the event log."""
