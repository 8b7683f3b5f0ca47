//! Fast leader election and the ZAB protocol as state machines: events in
//! (messages, ticks), actions out (send, persist, commit). No I/O, no clock.
