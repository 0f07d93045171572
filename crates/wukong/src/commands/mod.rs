pub mod crd;
pub mod render;
