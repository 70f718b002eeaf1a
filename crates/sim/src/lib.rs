//! The batched inventory simulator: problem settings, scenario generation and the period dynamics,
//! on the autodiff tape (training) and tape-free (evaluation).

pub mod optimum;
