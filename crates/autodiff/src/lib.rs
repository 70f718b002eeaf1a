//! Tape-based reverse-mode autodiff (placeholder).
