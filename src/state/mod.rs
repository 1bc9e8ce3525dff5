//! The run's checkpoint: a `Store` trait and its sled implementation.
