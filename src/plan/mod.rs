//! Steps and actions, the DAG, deterministic ordering, the critical path and the plan fingerprint.
