"""Dispatch: tandemd's ROUTER to its workers, with credit-based flow control and heartbeats."""
