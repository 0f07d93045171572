pub mod controller;
pub mod crd;
pub mod diff;
pub mod render;
