//! One module per phase, each turning a validated spec into steps (plain data).
