//! The shell around the pure core: command line, YAML in and out, and (in `controller`) the
//! I/O against the API server.
#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod controller;
