//! Optimal costs and bounds (placeholder).
