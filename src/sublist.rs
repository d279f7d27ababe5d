//! Sublist (stub until written).
