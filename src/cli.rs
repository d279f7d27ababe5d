//! Command line (stub until written).
