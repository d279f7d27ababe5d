//! Subjects (stub until written).
