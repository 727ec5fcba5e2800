//! Unit tests of the gossip plane.
