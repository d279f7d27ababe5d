//! nats-server conf format (stub until written).
